//! `k3sctl etcd snapshot save|list|prune`: K3s's etcd snapshots across the cluster.

use std::process::ExitCode;
use std::time::Duration;

use super::confirm::confirmer;
use super::output::print_json;
use super::progress::line_reporter;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, Global};
use crate::kube::SnapshotFile;
use crate::ops::etcd_restore::{self, RestoreOptions};
use crate::ops::etcd_snapshot;
use crate::plan::restore::{Datastore, render_restore_plan};

/// Arguments of `etcd`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: EtcdCommand,
}

/// `etcd` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EtcdCommand {
    /// K3s's etcd snapshots; on a single server keeping its state in SQLite, copies of its
    /// store and token instead (taken with K3s stopped for the copy).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Restore the cluster's etcd from a snapshot: K3s stopped on every server, reset from the
    /// snapshot on the server holding it, the other servers' server/db moved aside (kept) and
    /// joined again one at a time; agents keep running. A single SQLite server gets its store
    /// from a SQLite snapshot instead (its current server/db moved aside, kept). Everything
    /// written to the API after the snapshot is lost; asks first (or --yes). Re-running it
    /// after an interruption finishes it.
    Restore(RestoreArgs),
}

/// Arguments of `etcd restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot: a name from `k3sctl etcd snapshot list` (a file in
    /// /var/lib/rancher/k3s/server/db/snapshots on some server, or for SQLite in
    /// /var/lib/rancher/k3s/server/sqlite-snapshots), or an absolute path on a server.
    pub snapshot: String,
    /// Print the steps it would run and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Limit of each wait (the reset, a server Ready, a member a voter), in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// Record unknown ssh host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

/// `etcd snapshot` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot on a Ready voting server (a single SQLite server: a copy of its store,
    /// K3s stopped meanwhile, asks first or --yes); prints the node and where the file is.
    Save {
        /// Name prefix; K3s names the file `<name>-<node>-<unix time>`.
        #[arg(long, default_value = "on-demand")]
        name: String,
        /// Record unknown ssh host keys instead of refusing them.
        #[arg(long)]
        accept_new_host_keys: bool,
    },
    /// List the snapshots of every server (the API's ETCDSnapshotFile objects; a single SQLite
    /// server: its SQLite snapshots).
    List {
        /// Record unknown ssh host keys instead of refusing them.
        #[arg(long)]
        accept_new_host_keys: bool,
    },
    /// Keep the newest N snapshots of a name prefix on each server; remove older ones.
    Prune {
        /// Name prefix whose snapshots are pruned (scheduled ones are `etcd-snapshot`).
        #[arg(long, default_value = "on-demand")]
        name: String,
        /// How many to keep on each server.
        #[arg(long, default_value_t = 5)]
        retention: usize,
        /// Record unknown ssh host keys instead of refusing them.
        #[arg(long)]
        accept_new_host_keys: bool,
    },
}

/// Pure: the `list` table.
pub fn render_table(files: &[SnapshotFile]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "NODE".to_string(),
        "SIZE".to_string(),
        "CREATED".to_string(),
        "LOCATION".to_string(),
    ]];
    for f in files {
        rows.push([
            f.name.clone(),
            f.node.clone(),
            f.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            f.created.clone().unwrap_or_else(|| "-".into()),
            f.location.clone(),
        ]);
    }
    let mut widths = [0usize; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    rows.iter()
        .map(|r| {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect();
            format!("{}\n", line.join("  ").trim_end())
        })
        .collect()
}

fn run_restore(global: &Global, args: RestoreArgs) -> CommandResult {
    let reporter = line_reporter(global);
    let options = RestoreOptions {
        connect: connect_options(args.accept_new_host_keys),
        dry_run: args.dry_run,
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let confirm = confirmer(global, None);
    let report = block_on(etcd_restore::restore(
        &global.config,
        &args.snapshot,
        options,
        &confirm,
        reporter,
    ))??;
    if global.json() {
        print_json(&report)?;
    } else if report.dry_run {
        print!("{}", render_restore_plan(&report.plan));
    } else {
        println!(
            "restored {} from {} on {} in {:.1}s",
            match report.plan.datastore {
                Datastore::Etcd => "etcd",
                Datastore::Sqlite => "the SQLite store",
            },
            report.plan.snapshot,
            report.plan.server,
            report.seconds
        );
        for (host, dir) in &report.kept {
            println!("  {host}: its old server/db is kept at {dir}");
        }
        for n in &report.deleted_nodes {
            println!("  deleted Node {n} (not in the spec)");
        }
        for a in &report.restarted_agents {
            println!("  restarted agent {a}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Tells on stderr when the API answered through another server than the spec's first (and
/// why the ones before it did not); the result itself goes to stdout.
fn api_note<T>(answered: etcd_snapshot::Answered<T>) -> T {
    if let Some(note) = answered
        .api
        .as_ref()
        .and_then(etcd_snapshot::ApiThrough::note)
    {
        eprintln!("{note}");
    }
    answered.value
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let cmd = match args.command {
        EtcdCommand::Snapshot(cmd) => cmd,
        EtcdCommand::Restore(a) => return run_restore(global, a),
    };
    match cmd {
        SnapshotCommand::Save {
            name,
            accept_new_host_keys,
        } => {
            let saved = block_on(etcd_snapshot::save(
                &global.config,
                Some(&name),
                connect_options(accept_new_host_keys),
                &confirmer(global, None),
            ))??;
            let saved = api_note(saved);
            if global.json() {
                print_json(&saved)?;
            } else {
                println!(
                    "snapshot {} saved on {}: {}",
                    saved.name, saved.node, saved.location
                );
            }
        }
        SnapshotCommand::List {
            accept_new_host_keys,
        } => {
            let files = block_on(etcd_snapshot::list(
                &global.config,
                connect_options(accept_new_host_keys),
            ))??;
            let files = api_note(files);
            if global.json() {
                print_json(&files)?;
            } else if files.is_empty() {
                println!("no etcd snapshots");
            } else {
                print!("{}", render_table(&files));
            }
        }
        SnapshotCommand::Prune {
            name,
            retention,
            accept_new_host_keys,
        } => {
            let pruned = block_on(etcd_snapshot::prune(
                &global.config,
                &name,
                retention,
                connect_options(accept_new_host_keys),
                &confirmer(global, None),
            ))??;
            let pruned = api_note(pruned);
            if global.json() {
                print_json(&pruned)?;
            } else {
                for p in pruned {
                    println!(
                        "{}: removed {} ({}), kept {}",
                        p.node,
                        p.removed.len(),
                        if p.removed.is_empty() {
                            "-".to_string()
                        } else {
                            p.removed.join(", ")
                        },
                        p.kept.len()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_table_has_one_row_per_snapshot() {
        let t = render_table(&[SnapshotFile {
            name: "on-demand-s1-1".into(),
            node: "s1".into(),
            location: "file:///d/on-demand-s1-1".into(),
            size: Some(20480),
            created: Some("2026-01-01T00:00:01Z".into()),
            ready: true,
        }]);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            lines[0],
            vec!["NAME", "NODE", "SIZE", "CREATED", "LOCATION"]
        );
        assert_eq!(
            lines[1],
            vec![
                "on-demand-s1-1",
                "s1",
                "20480",
                "2026-01-01T00:00:01Z",
                "file:///d/on-demand-s1-1"
            ]
        );
    }
}
