//! A local stand-in for GitHub's release downloads and the K3s channel server, with their URL
//! shapes: `/k3s-io/k3s/releases/download/<v%2Bk3sN>/<asset>` answers 302 to an object URL;
//! `/v1-release/channels` lists channels as JSON; `/v1-release/channels/<name>` answers 302 to
//! `.../releases/tag/<version>`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The running site.
pub struct ReleaseSite {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Release files: `<root>/<version>/<asset>`.
    pub root: PathBuf,
    channels: Arc<Mutex<BTreeMap<String, String>>>,
}

impl ReleaseSite {
    /// Serves `root` in a background thread.
    pub fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind release site");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let channels = Arc::new(Mutex::new(BTreeMap::new()));
        let (dir, map) = (root.clone(), Arc::clone(&channels));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (dir, map) = (dir.clone(), Arc::clone(&map));
                std::thread::spawn(move || serve(stream, &dir, &map));
            }
        });
        Self {
            base,
            root,
            channels,
        }
    }

    /// Points channel `name` at `version`.
    pub fn set_channel(&self, name: &str, version: &str) {
        self.channels
            .lock()
            .expect("channels")
            .insert(name.into(), version.into());
    }

    /// The binary URL template for the spec.
    pub fn binary_template(&self) -> String {
        format!(
            "{}/k3s-io/k3s/releases/download/{{version}}/{{asset}}",
            self.base
        )
    }

    /// The checksum URL template for the spec.
    pub fn sha256_template(&self) -> String {
        format!(
            "{}/k3s-io/k3s/releases/download/{{version}}/sha256sum-{{arch}}.txt",
            self.base
        )
    }

    /// The channel server URL for the spec.
    pub fn channel_url(&self) -> String {
        format!("{}/v1-release/channels", self.base)
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn serve(
    mut stream: TcpStream,
    root: &std::path::Path,
    channels: &Mutex<BTreeMap<String, String>>,
) {
    let mut line = String::new();
    {
        let mut reader = BufReader::new(&stream);
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let mut header = String::new();
        while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
            header.clear();
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let decoded = path.replace("%2B", "+");
    let parts: Vec<&str> = decoded.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["k3s-io", "k3s", "releases", "download", version, asset] => {
            let location = format!("/objects/{version}/{asset}");
            respond(
                &mut stream,
                "302 Found",
                &format!("Location: {location}\r\n"),
                b"",
            );
        }
        ["objects", version, asset] => match fs_err::read(root.join(version).join(asset)) {
            Ok(bytes) => respond(&mut stream, "200 OK", "", &bytes),
            Err(_) => respond(&mut stream, "404 Not Found", "", b"Not Found"),
        },
        ["v1-release", "channels"] => {
            let map = channels.lock().expect("channels").clone();
            let data: Vec<serde_json::Value> = map
                .iter()
                .map(|(name, latest)| {
                    serde_json::json!({"id": name, "type": "channel", "name": name,
                        "latest": latest, "links": {"self": format!("/v1-release/channels/{name}")}})
                })
                .collect();
            let body = serde_json::json!({"type": "collection", "resourceType": "channels",
                "links": {}, "data": data});
            respond(
                &mut stream,
                "200 OK",
                "Content-Type: application/json\r\n",
                body.to_string().as_bytes(),
            );
        }
        ["v1-release", "channels", name] => {
            let latest = channels.lock().expect("channels").get(*name).cloned();
            match latest {
                Some(v) => {
                    let location = format!(
                        "https://github.com/k3s-io/k3s/releases/tag/{}",
                        v.replace('+', "%2B")
                    );
                    respond(
                        &mut stream,
                        "302 Found",
                        &format!("Location: {location}\r\n"),
                        b"",
                    );
                }
                None => respond(&mut stream, "404 Not Found", "", b"Not Found"),
            }
        }
        _ => respond(&mut stream, "404 Not Found", "", b"Not Found"),
    }
}
