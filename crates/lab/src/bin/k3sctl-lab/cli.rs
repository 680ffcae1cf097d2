//! Command-line arguments of `k3sctl-lab`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Disposable Debian hosts (systemd-nspawn) for trying and testing k3sctl.
#[derive(Debug, Parser)]
#[command(name = "k3sctl-lab", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Subcommands. Host commands find the lab from the host name (`<lab>-<n>`).
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create (or re-create) a lab and boot its hosts.
    Up {
        /// Lab name; hosts are called NAME-1, NAME-2, ...
        #[arg(long, default_value = "lab")]
        name: String,
        /// Number of hosts.
        #[arg(long, default_value_t = 3)]
        hosts: u8,
        /// Give every host a second NIC (eth1) on a second bridge.
        #[arg(long)]
        dual_nic: bool,
        /// Also create this non-root login user on every host, with the lab key and
        /// passwordless sudo; the spec written by --spec-out logs in as this user.
        #[arg(long, value_name = "NAME")]
        login_user: Option<String>,
        /// Make the login user's sudo ask for a password (k3sctl must refuse such hosts).
        #[arg(long, requires = "login_user")]
        sudo_asks_password: bool,
        /// Add a host NAME-pve playing a Proxmox VE node: the other hosts become its LXC
        /// containers (vmids 201, 202, ...), run no sshd and are reached with `pct` there.
        #[arg(long)]
        proxmox: bool,
        /// Write a k3sctl cluster spec for the lab to this file.
        #[arg(long, value_name = "FILE")]
        spec_out: Option<PathBuf>,
        /// How many of the first hosts the spec makes servers (the rest are agents); use an odd
        /// number for embedded etcd.
        #[arg(long, value_name = "N", default_value_t = 1, requires = "spec_out")]
        servers: u8,
        /// K3s binary for the spec (default: the k3s-sim stand-in next to this program).
        #[arg(long, value_name = "PATH", requires = "spec_out")]
        k3s_binary: Option<PathBuf>,
        /// K3s version written into the spec and stamped into the stand-in.
        #[arg(long, value_name = "VERSION", requires = "spec_out")]
        k3s_version: Option<String>,
        /// Keep the lab only while this command runs: it waits for end of input (Ctrl-D),
        /// then removes the lab; if it is killed, `k3sctl-lab cleanup` removes the lab.
        #[arg(long)]
        hold: bool,
        /// Seconds to wait for all hosts to be ready.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Remove a lab (or every lab).
    Down {
        /// Lab name.
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// Remove every lab and every object this tool created.
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
    /// Remove labs whose owning process died, and remains of half-removed labs.
    Cleanup,
    /// Show labs and their hosts.
    Status {
        /// Only this lab.
        name: Option<String>,
    },
    /// Serve `pct` for a lab's Proxmox stand-in (started by `up --proxmox`).
    #[command(hide = true)]
    PveAgent {
        /// Lab name.
        #[arg(long)]
        lab: String,
    },
    /// Power a host off cleanly.
    Stop {
        /// Host name.
        host: String,
    },
    /// Boot a stopped, crashed or lost host and wait until systemd is running.
    Start {
        /// Host name.
        host: String,
        /// Return once ssh answers, without waiting for every unit to start.
        #[arg(long)]
        ssh_only: bool,
    },
    /// Kill every process of a host at once.
    Crash {
        /// Host name.
        host: String,
    },
    /// Crash a host and silence its network until `start`.
    Lose {
        /// Host name.
        host: String,
    },
    /// Drop all traffic between a host and the given peers (both directions).
    Partition {
        /// Host name.
        host: String,
        /// Peers to cut off.
        #[arg(long, required = true, num_args = 1..)]
        from: Vec<String>,
    },
    /// Remove partitions of a host (or of every host of a lab).
    Heal {
        /// Host name.
        #[arg(required_unless_present = "lab")]
        host: Option<String>,
        /// Heal every host of this lab.
        #[arg(long, conflicts_with = "host")]
        lab: Option<String>,
    },
    /// Pull every cable of a host.
    Cut {
        /// Host name.
        host: String,
    },
    /// Plug a host's cables back in.
    Uncut {
        /// Host name.
        host: String,
    },
    /// Run a command on a host over ssh.
    Exec {
        /// Host name.
        host: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Open an interactive ssh session on a host.
    Ssh {
        /// Host name.
        host: String,
    },
    /// Build the base image if needed and print its path.
    Image,
    /// Measure boot time, memory per host and teardown time.
    Bench {
        /// Lab sizes to measure.
        #[arg(long, value_delimiter = ',', default_value = "5,10")]
        sizes: Vec<u8>,
    },
}
