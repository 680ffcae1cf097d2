//! Two labs at once: distinct subnets, bridges and names, no traffic between them; a lab held
//! by a panicking thread is torn down by its drop while the other keeps running.

mod common;

use std::sync::mpsc;
use std::thread;

use common::{assert_gone, reachable_from};
use lab::{Lab, LabOptions};

#[test]
fn two_labs_run_side_by_side_and_a_panic_tears_one_down() {
    let (booted_tx, booted_rx) = mpsc::channel();
    let (panic_tx, panic_rx) = mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        let b = Lab::boot("t-iso-b", 1).expect("lab b boots");
        booted_tx
            .send((b.hosts(), b.footprint(), b.state().index, b.ssh_config()))
            .expect("main thread waits");
        // Hold the lab until the main thread has looked at both labs, then fail.
        let _ = panic_rx.recv();
        panic!("the test thread holding lab b panics");
    });
    let a = Lab::up(&LabOptions {
        dual_nic: true,
        ..LabOptions::new("t-iso-a", 1)
    })
    .expect("lab a boots");
    let (b_hosts, b_footprint, b_index, b_config) = booted_rx.recv().expect("lab b booted");

    let a_host = &a.hosts()[0];
    let b_host = &b_hosts[0];
    assert_ne!(a.state().index, b_index);
    assert_ne!(a_host.address, b_host.address);
    assert_eq!(
        a.exec(&a_host.name, "hostname").expect("a answers"),
        "t-iso-a-1\n"
    );
    let b_name = std::process::Command::new("ssh")
        .arg("-F")
        .arg(&b_config)
        .args([&b_host.name, "hostname"])
        .output()
        .expect("ssh runs");
    assert_eq!(String::from_utf8_lossy(&b_name.stdout), "t-iso-b-1\n");
    // Objects of the two labs never overlap.
    let a_footprint = a.footprint();
    assert!(
        a_footprint
            .links
            .iter()
            .all(|l| !b_footprint.links.contains(l))
    );
    assert!(
        a_footprint
            .netns
            .iter()
            .all(|n| !b_footprint.netns.contains(n))
    );

    // Dual NIC: eth1 on the second bridge; nothing routes between labs.
    let private = a_host.private_address.expect("dual-NIC host has eth1");
    let eth1 = a
        .exec(&a_host.name, "ip -4 -o addr show eth1")
        .expect("eth1");
    assert!(eth1.contains(&format!("inet {private}/24")), "{eth1}");
    assert_eq!(
        reachable_from(&a, &a_host.name, 22, &[b_host.address]),
        [false]
    );
    // The machine is reachable on the gateway address (services a test binds there).
    let listener = std::net::TcpListener::bind((a.gateway(), 0)).expect("bind on the gateway");
    let port = listener.local_addr().expect("addr").port();
    assert_eq!(
        reachable_from(&a, &a_host.name, port, &[a.gateway()]),
        [true]
    );
    let routes = a.exec(&a_host.name, "ip route").expect("routes");
    assert!(
        !routes.contains("default"),
        "hosts must not route off the machine: {routes}"
    );

    // The panicking holder's drop removes lab b; lab a is untouched.
    panic_tx.send(()).expect("holder waits");
    assert!(holder.join().is_err(), "the holder thread panicked");
    assert_gone(&b_footprint);
    assert_eq!(
        a.exec(&a_host.name, "hostname").expect("a still answers"),
        "t-iso-a-1\n"
    );

    let a_footprint = a.footprint();
    a.down().expect("down");
    assert_gone(&a_footprint);
}
