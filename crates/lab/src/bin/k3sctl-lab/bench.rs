//! `k3sctl-lab bench`: boot time, memory per host and teardown time for several lab sizes.
//! "total" includes registration and writing identities; launch/ssh/running are measured
//! from the start of the boot (roots, network, nspawn) to the last host reaching that point.

use std::time::{Duration, Instant};

use lab::{Lab, LabError, LabOptions};

/// Boots a lab of each size, measures, prints one line per size.
pub fn run(sizes: &[u8]) -> Result<(), LabError> {
    let load = fs_err::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "machine: {cpus} CPUs, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>9} {:>13} {:>12}",
        "hosts", "total s", "launch s", "ssh s", "running s", "MiB per host", "teardown s"
    );
    for &n in sizes {
        let name = format!("bench{n}");
        let start = Instant::now();
        let lab = Lab::up(&LabOptions {
            boot_timeout: Duration::from_secs(120),
            ..LabOptions::new(&name, n)
        })?;
        let boot = start.elapsed();
        let lab_timings = lab.boot_timings();
        let mut total_kib = 0;
        for h in lab.hosts() {
            total_kib += lab.memory_kib(&h.name)?;
        }
        let per_host = total_kib as f64 / f64::from(n) / 1024.0;
        let start = Instant::now();
        lab.down()?;
        let teardown = start.elapsed();
        let t = lab_timings;
        println!(
            "{n:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {per_host:>13.1} {:>12.2}",
            boot.as_secs_f64(),
            t.launch.as_secs_f64(),
            t.ssh.as_secs_f64(),
            t.running.as_secs_f64(),
            teardown.as_secs_f64()
        );
    }
    Ok(())
}
