//! `k3sctl-lab bench`: boot time, memory per host and teardown time for several lab sizes.

use std::time::{Duration, Instant};

use lab::{Lab, LabError, LabOptions};

/// Boots a lab of each size, measures, prints one line per size.
pub fn run(sizes: &[u8]) -> Result<(), LabError> {
    println!(
        "{:>5} {:>10} {:>14} {:>12}",
        "hosts", "boot (s)", "MiB per host", "teardown (s)"
    );
    for &n in sizes {
        let name = format!("bench{n}");
        let start = Instant::now();
        let lab = Lab::up(&LabOptions {
            boot_timeout: Duration::from_secs(120),
            ..LabOptions::new(&name, n)
        })?;
        let boot = start.elapsed();
        let mut total_kib = 0;
        for h in lab.hosts() {
            total_kib += lab.memory_kib(&h.name)?;
        }
        let per_host = total_kib as f64 / f64::from(n) / 1024.0;
        let start = Instant::now();
        lab.down()?;
        let teardown = start.elapsed();
        println!(
            "{n:>5} {:>10.2} {per_host:>14.1} {:>12.2}",
            boot.as_secs_f64(),
            teardown.as_secs_f64()
        );
    }
    Ok(())
}
