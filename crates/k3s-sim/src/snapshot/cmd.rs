//! `k3s etcd-snapshot save|ls|list|l|delete|prune`: the CLI sends the request to the running
//! local server's supervisor (`POST /db/snapshot`, user `server` with the server token from
//! `${data-dir}/server/token`, trusting `server/tls/server-ca.crt`), as K3s's rewritten CLI does;
//! without a running server it fails. Options are read from the command line only.

use serde_json::{Value, json};

use super::names;

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `save`, `list`, `delete` or `prune`.
    pub operation: String,
    /// `--name` (save/prune), or the snapshots to delete.
    pub names: Vec<String>,
    /// `--dir` / `--etcd-snapshot-dir`.
    pub dir: Option<String>,
    /// `-o/--output` of `ls`: table, json or yaml.
    pub output: String,
    /// `--snapshot-retention` / `--etcd-snapshot-retention`.
    pub retention: usize,
    /// `--data-dir` / `-d`.
    pub data_dir: String,
    /// `--etcd-server` (default https://127.0.0.1:6443).
    pub server: String,
    /// `--etcd-token` / `--token` / `-t` (default: the server token file).
    pub token: Option<String>,
}

/// Bad usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses `k3s etcd-snapshot` arguments (after `etcd-snapshot`).
pub fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options {
        operation: String::new(),
        names: Vec::new(),
        dir: None,
        output: "table".into(),
        retention: 5,
        data_dir: crate::paths::DEFAULT_DATA_DIR.into(),
        server: "https://127.0.0.1:6443".into(),
        token: None,
    };
    let mut name_flag: Option<String> = None;
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if !flag.starts_with('-') || flag == "-" {
            positional.push(a.clone());
            i += 1;
            continue;
        }
        let mut value = || -> Result<String, UsageError> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| UsageError(format!("flag needs an argument: {flag}")))
        };
        match flag.trim_start_matches('-') {
            "name" => name_flag = Some(value()?),
            "dir" | "etcd-snapshot-dir" => o.dir = Some(value()?),
            "o" | "output" => o.output = value()?,
            "snapshot-retention" | "etcd-snapshot-retention" => {
                let v = value()?;
                o.retention = v.parse().map_err(|_| {
                    UsageError(format!("invalid value {v:?} for flag {flag}: parse error"))
                })?;
            }
            "data-dir" | "d" => o.data_dir = value()?,
            "etcd-server" => o.server = value()?,
            "etcd-token" | "token" | "t" => o.token = Some(value()?),
            "node-name" | "config" | "c" => {
                value()?;
            }
            "debug" => {}
            f if f.starts_with("s3")
                || f.starts_with("etcd-s3")
                || f == "etcd-snapshot-compress"
                || f == "compress" =>
            {
                return Err(UsageError(format!(
                    "--{f}: S3 storage and compression are not implemented by k3s-sim"
                )));
            }
            f => return Err(UsageError(format!("flag provided but not defined: -{f}"))),
        }
        i += 1;
    }
    let (sub, rest) = positional
        .split_first()
        .ok_or_else(|| UsageError("missing command: save, ls, delete or prune".into()))?;
    o.operation = match sub.as_str() {
        "save" => "save",
        "ls" | "list" | "l" => "list",
        "delete" => "delete",
        "prune" => "prune",
        other => return Err(UsageError(format!("No help topic for '{other}'"))),
    }
    .to_string();
    if o.operation == "delete" {
        if rest.is_empty() {
            return Err(UsageError("no snapshots given for removal".into()));
        }
        o.names = rest.to_vec();
    } else if !rest.is_empty() {
        return Err(UsageError(format!("unexpected arguments {rest:?}")));
    } else {
        o.names = vec![name_flag.unwrap_or_else(|| names::ON_DEMAND.to_string())];
    }
    if !matches!(o.output.as_str(), "table" | "json" | "yaml") {
        return Err(UsageError(format!(
            "invalid output format {:?}: use table, json or yaml",
            o.output
        )));
    }
    Ok(o)
}

/// The request body for the server.
pub fn request_body(o: &Options) -> Value {
    json!({
        "operation": o.operation,
        "name": o.names,
        "dir": o.dir.clone().unwrap_or_default(),
        "retention": o.retention,
    })
}

/// What the CLI prints for the server's answer: (stdout, log lines).
pub fn render(o: &Options, answer: &Value) -> (String, Vec<String>) {
    let items: Vec<Value> = answer["items"].as_array().cloned().unwrap_or_default();
    let strings = |k: &str| -> Vec<String> {
        answer[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    match o.operation.as_str() {
        "save" => (
            String::new(),
            items
                .iter()
                .map(|i| {
                    format!(
                        "Snapshot {} saved.",
                        i["spec"]["snapshotName"].as_str().unwrap_or("")
                    )
                })
                .collect(),
        ),
        "list" => {
            let out = match o.output.as_str() {
                "json" => format!(
                    "{}\n",
                    serde_json::to_string_pretty(answer).unwrap_or_default()
                ),
                "yaml" => serde_saphyr::to_string(answer).unwrap_or_else(|_| answer.to_string()),
                _ => names::table(&items),
            };
            (out, Vec::new())
        }
        "delete" => {
            let mut logs: Vec<String> = strings("deleted")
                .iter()
                .map(|n| format!("Snapshot {n} deleted."))
                .collect();
            logs.extend(
                strings("missing")
                    .iter()
                    .map(|n| format!("Snapshot {n} not found.")),
            );
            (String::new(), logs)
        }
        _ => (
            String::new(),
            strings("pruned")
                .iter()
                .map(|n| format!("Removed local snapshot {n}"))
                .collect(),
        ),
    }
}

/// Runs the command; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("Incorrect Usage: {e}");
            crate::log::fatal(e.0);
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::log::fatal(format!("starting runtime: {e}"));
            return 1;
        }
    };
    match rt.block_on(send(&o)) {
        Ok(answer) => {
            let (out, logs) = render(&o, &answer);
            for l in logs {
                crate::log::info(l);
            }
            print!("{out}");
            0
        }
        Err(e) => {
            crate::log::fatal(e);
            1
        }
    }
}

async fn send(o: &Options) -> Result<Value, String> {
    let dd = crate::paths::DataDir::new(&o.data_dir);
    let token = match &o.token {
        Some(t) => t.clone(),
        None => fs_err::read_to_string(dd.token()).map_err(|e| {
            format!(
                "reading the server token {}: {e} (is this a K3s server?)",
                dd.token().display()
            )
        })?,
    };
    let password = crate::token::parse(token.trim()).password;
    let ca_path = dd.tls().join("server-ca.crt");
    let ca = fs_err::read_to_string(&ca_path)
        .map_err(|e| format!("reading {}: {e}", ca_path.display()))?;
    let client =
        crate::http::client::Client::new(&o.server, &crate::http::client::Trust::Ca(ca), None)
            .map_err(|e| e.to_string())?
            .with_basic_auth("server", &password);
    let body = request_body(o).to_string().into_bytes();
    let reply = client
        .request(
            "POST",
            "/db/snapshot",
            &[],
            Some(("application/json", body)),
        )
        .await
        .map_err(|e| format!("etcd-snapshot: the K3s server must be running: {e}"))?;
    let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    if reply.status != 200 {
        let msg = v["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| reply.text());
        return Err(format!("etcd-snapshot {}: {msg}", o.operation));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn subcommands_flags_and_defaults() {
        let o = parse(&args(&["save", "--name", "pre", "--dir=/s"])).expect("save");
        assert_eq!(
            (o.operation.as_str(), o.names.clone(), o.dir.clone()),
            ("save", vec!["pre".to_string()], Some("/s".to_string()))
        );
        let o = parse(&args(&["l", "-o", "json"])).expect("ls");
        assert_eq!((o.operation.as_str(), o.output.as_str()), ("list", "json"));
        let o = parse(&args(&["prune", "--snapshot-retention", "2"])).expect("prune");
        assert_eq!(
            (o.retention, o.names.clone()),
            (2, vec!["on-demand".to_string()])
        );
        let o = parse(&args(&["delete", "a", "b"])).expect("delete");
        assert_eq!(o.names, vec!["a", "b"]);
        assert!(parse(&args(&["delete"])).is_err());
        assert!(parse(&args(&["ls", "-o", "wide"])).is_err());
        assert!(
            parse(&args(&["save", "--s3"]))
                .expect_err("s3")
                .0
                .contains("not implemented")
        );
        assert!(
            parse(&args(&["save", "--bogus"]))
                .expect_err("bogus")
                .0
                .contains("flag provided but not defined")
        );
        assert!(parse(&args(&[])).is_err());
    }

    #[test]
    fn answers_render_as_k3s_prints_them() {
        let o = parse(&args(&["save"])).expect("save");
        let f = names::SnapshotFile {
            name: "on-demand-s1-5".into(),
            path: "/d/on-demand-s1-5".into(),
            size: 3,
            created: 5,
        };
        let answer = names::list(vec![names::object(&f, "s1")]);
        assert_eq!(
            render(&o, &answer).1,
            vec!["Snapshot on-demand-s1-5 saved."]
        );
        let ls = parse(&args(&["ls"])).expect("ls");
        assert!(render(&ls, &answer).0.starts_with("Name"));
        let js = parse(&args(&["ls", "-o", "json"])).expect("json");
        let back: Value = serde_json::from_str(&render(&js, &answer).0).expect("json out");
        assert_eq!(back["kind"], "ETCDSnapshotFileList");
        assert_eq!(request_body(&o)["operation"], "save");
    }
}
