//! Command dispatch. As `k3s` the binary offers `server`, `agent`, `certificate`, `--version` and
//! K3s's other faces (`kubectl`, `crictl`, `ctr`, `completion`, `check-config`, also reached
//! through links named `kubectl`, `crictl` and `ctr`); as `k3s-sim` it also offers `stamp` and
//! `release` to produce versioned copies.

use std::path::PathBuf;

use crate::fatal::Fatal;
use crate::flags::Role;

const USAGE: &str = "NAME:\n   k3s - Kubernetes, but small and simple\n\nUSAGE:\n   k3s [global options] command [command options] [arguments...]\n\nCOMMANDS:\n   server        Run management server\n   agent         Run node agent\n   kubectl       Run kubectl\n   crictl        Run crictl\n   ctr           Run ctr\n   check-config  Run config check\n   certificate   Manage K3s certificates\n   token         Manage tokens\n   etcd-snapshot Manage etcd snapshots\n   completion    Install shell completion script\n\nGLOBAL OPTIONS:\n   --debug        (logging) Turn on debug logs\n   --help, -h     show help\n   --version, -v  print the version\n";

const SIM_USAGE: &str = "k3s-sim stamp --version V -o PATH [--from BINARY] [--fail-start MESSAGE]\nk3s-sim release --version V --dir DIR [--arch amd64] [--from BINARY] [--fail-start MESSAGE]\n";

fn usage_error(msg: &str) -> i32 {
    eprintln!("Incorrect Usage: {msg}\n\n{USAGE}");
    crate::log::fatal(msg);
    1
}

fn run_async(fut: impl std::future::Future<Output = Result<(), Fatal>>) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::log::fatal(format!("starting runtime: {e}"));
            return 1;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => 0,
        Err(e) => {
            crate::log::fatal(&e.0);
            1
        }
    }
}

fn node(role: Role, args: &[String]) -> i32 {
    let settings = match crate::settings::resolve(role, args) {
        Ok(s) => s,
        Err(crate::settings::ResolveError::Flags(e)) => return usage_error(&e.to_string()),
        Err(e) => {
            crate::log::fatal(e.to_string());
            return 1;
        }
    };
    let stamp = crate::version::current_stamp();
    if let Some(msg) = &stamp.fail_start {
        // A release stamped broken (k3s-sim stamp --fail-start): it starts, then dies, as a bad
        // release would, so upgrade tests can watch a rollout stop on it.
        crate::log::info(format!("Starting k3s {} {}", role.as_str(), stamp.version));
        crate::log::fatal(msg);
        return 1;
    }
    match role {
        Role::Server => run_async(crate::server::run(settings)),
        Role::Agent => run_async(crate::agent::run(settings)),
    }
}

fn certificate(args: &[String]) -> i32 {
    let (sub, rest) = match args.split_first() {
        Some((s, r)) => (s.as_str(), r),
        None => {
            eprintln!(
                "NAME:\n   k3s certificate - Manage K3s certificates\n\nCOMMANDS:\n   check   Check K3s component certificates on disk\n   rotate  Rotate K3s component certificates on disk\n"
            );
            return 0;
        }
    };
    let opts = match crate::certcmd::parse(rest) {
        Ok(o) => o,
        Err(e) => return usage_error(&e.to_string()),
    };
    let result = match sub {
        "check" => crate::certcmd::check(&opts)
            .and_then(|rows| crate::certcmd::render_check(&rows, &opts.output))
            .map(|text| {
                // K3s's text format is its log lines (stderr); the others go to stdout.
                if opts.output == "text" {
                    eprint!("{text}");
                } else {
                    print!("{text}");
                }
            }),
        "rotate" => crate::certcmd::rotate(&opts).map(|backup| {
            crate::log::info(format!(
                "Successfully backed up certificates to {}, please restart k3s server or agent to rotate certificates",
                backup.display()
            ))
        }),
        other => return usage_error(&format!("No help topic for '{other}'")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            crate::log::fatal(&e.0);
            1
        }
    }
}

fn token(args: &[String]) -> i32 {
    let (sub, rest) = match args.split_first() {
        Some((s, r)) => (s.as_str(), r),
        None => {
            eprintln!(
                "NAME:\n   k3s token - Manage tokens\n\nCOMMANDS:\n   rotate  Rotate original server token with a new server token\n"
            );
            return 0;
        }
    };
    match sub {
        "rotate" => {
            let opts = match crate::tokencmd::parse(rest) {
                Ok(o) => o,
                Err(e) => return usage_error(&e.to_string()),
            };
            run_async(crate::tokencmd::rotate(opts))
        }
        "create" | "delete" | "generate" | "list" => {
            crate::log::fatal(format!(
                "k3s token {sub}: bootstrap tokens are not implemented by the stand-in"
            ));
            1
        }
        other => usage_error(&format!("No help topic for '{other}'")),
    }
}

fn flag_value(args: &[String], names: &[&str]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        for n in names {
            if a == n {
                return it.next().cloned();
            }
            if let Some(v) = a.strip_prefix(&format!("{n}=")) {
                return Some(v.to_string());
            }
        }
    }
    None
}

fn sim_command(cmd: &str, args: &[String]) -> i32 {
    let Some(version) = flag_value(args, &["--version"]) else {
        eprintln!("missing --version\n\n{SIM_USAGE}");
        return 2;
    };
    let stamp = crate::version::Stamp {
        version,
        fail_start: flag_value(args, &["--fail-start"]),
    };
    let from = flag_value(args, &["--from"])
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
    let result = match cmd {
        "stamp" => match flag_value(args, &["-o", "--output"]) {
            Some(out) => {
                crate::version::stamp_file(&from, &PathBuf::from(&out), &stamp).map(|()| out)
            }
            None => {
                eprintln!("missing -o PATH\n\n{SIM_USAGE}");
                return 2;
            }
        },
        _ => match flag_value(args, &["--dir"]) {
            Some(dir) => {
                let arch = flag_value(args, &["--arch"]).unwrap_or_else(|| "amd64".into());
                crate::release::write_release(&from, &PathBuf::from(dir), &stamp, &arch)
                    .map(|p| p.display().to_string())
            }
            None => {
                eprintln!("missing --dir DIR\n\n{SIM_USAGE}");
                return 2;
            }
        },
    };
    match result {
        Ok(path) => {
            println!("{path}");
            0
        }
        Err(e) => {
            eprintln!("k3s-sim {cmd}: {e}");
            1
        }
    }
}

/// Runs the command line; returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    crate::tls::install_provider();
    let prog = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let as_sim = prog.starts_with("k3s-sim");
    let mut args: Vec<String> = argv.into_iter().skip(1).collect();
    // The install script's links: argv[0] picks the face, every argument is the face's own.
    if let Some(face) = crate::faces::by_program_name(&prog) {
        return crate::faces::run(face, &args);
    }
    // urfave/cli's completion callback, used by `k3s completion` scripts.
    if args.last().map(String::as_str) == Some(crate::faces::completion::GENERATE_FLAG) {
        let words = &args[..args.len() - 1];
        for c in crate::faces::completion::candidates(words) {
            println!("{c}");
        }
        return 0;
    }
    // Global flags before the command.
    while let Some(first) = args.first() {
        match first.as_str() {
            "--debug" => {
                args.remove(0);
            }
            _ => break,
        }
    }
    let Some((cmd, rest)) = args.split_first() else {
        print!("{USAGE}");
        return 0;
    };
    match cmd.as_str() {
        "--version" | "-v" | "version" => {
            print!(
                "{}",
                crate::version::version_text(crate::version::current())
            );
            0
        }
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            0
        }
        "server" => node(Role::Server, rest),
        "agent" => node(Role::Agent, rest),
        "certificate" | "cert" => certificate(rest),
        "token" => token(rest),
        "etcd-snapshot" => crate::snapshot::cmd::run(rest),
        "kubectl" | "crictl" | "ctr" | "completion" | "check-config" => {
            crate::faces::run(cmd, rest)
        }
        "stamp" | "release" if as_sim => sim_command(cmd, rest),
        other if other.starts_with('-') => usage_error(&format!(
            "flag provided but not defined: -{}",
            other.trim_start_matches('-')
        )),
        other => {
            eprintln!("No help topic for '{other}'");
            3
        }
    }
}
