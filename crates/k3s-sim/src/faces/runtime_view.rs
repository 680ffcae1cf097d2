//! What the node's container runtime would show for the pods the API places on it: one sandbox
//! per pod (with K3s's pause image), one container per container of a Running pod, and the images
//! they use; rendered as crictl and ctr print them. Pure: pods in, text out. No image is ever
//! pulled by the stand-in, so sizes are 0 and ids and digests are derived from names.

use serde_json::Value;
use sha2::Digest;
use time::OffsetDateTime;

/// The sandbox (pause) image K3s's containerd uses.
pub const PAUSE_IMAGE: &str = "docker.io/rancher/mirrored-pause:3.6";

/// A pod sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// 64 hex digits.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// When the pod was created.
    pub created: Option<OffsetDateTime>,
    /// Whether the sandbox runs (the pod is Running).
    pub ready: bool,
}

/// A container of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Full image reference (`docker.io/...:tag`).
    pub image: String,
    /// When it started.
    pub created: Option<OffsetDateTime>,
    /// Running (else exited).
    pub running: bool,
    /// Restart count.
    pub attempt: u64,
    /// The pod's sandbox.
    pub pod: Sandbox,
}

fn hex_id(seed: &str) -> String {
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

/// Docker-style normalisation: `nginx` → `docker.io/library/nginx:latest`.
pub fn normalize_image(image: &str) -> String {
    let (name, suffix) = match image.split_once('@') {
        Some((n, d)) => (n.to_string(), format!("@{d}")),
        None => (image.to_string(), String::new()),
    };
    let last = name.rsplit('/').next().unwrap_or(&name);
    let name = if suffix.is_empty() && !last.contains(':') {
        format!("{name}:latest")
    } else {
        name
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        name
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{full}{suffix}")
}

/// Splits a normalised reference into repository and tag (`<none>` for digests).
pub fn repo_and_tag(reference: &str) -> (String, String) {
    if let Some((repo, _)) = reference.split_once('@') {
        return (repo.to_string(), "<none>".into());
    }
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (
            reference[..slash + i].to_string(),
            reference[slash + i + 1..].to_string(),
        ),
        None => (reference.to_string(), "latest".into()),
    }
}

/// The image id (`sha256:` + 64 hex) the stand-in assigns to a reference.
pub fn image_id(reference: &str) -> String {
    format!("sha256:{}", hex_id(&format!("image:{reference}")))
}

fn time_of(v: &Value) -> Option<OffsetDateTime> {
    v.as_str().and_then(crate::clock::parse_rfc3339)
}

/// The sandboxes and containers for `pods` (already those of this node).
pub fn from_pods(pods: &[Value]) -> (Vec<Sandbox>, Vec<Container>) {
    let mut sandboxes = Vec::new();
    let mut containers = Vec::new();
    for p in pods {
        let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
        let running = p["status"]["phase"] == "Running";
        let sandbox = Sandbox {
            id: hex_id(&format!("sandbox:{uid}")),
            name: p["metadata"]["name"].as_str().unwrap_or_default().into(),
            namespace: p["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .into(),
            created: time_of(&p["metadata"]["creationTimestamp"]),
            ready: running,
        };
        if running {
            let statuses = p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for c in p["spec"]["containers"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default();
                let status = statuses.iter().find(|s| s["name"] == name);
                let started = status
                    .and_then(|s| time_of(&s["state"]["running"]["startedAt"]))
                    .or(sandbox.created);
                containers.push(Container {
                    id: hex_id(&format!("container:{uid}/{name}")),
                    name: name.into(),
                    image: normalize_image(c["image"].as_str().unwrap_or_default()),
                    created: started,
                    running: true,
                    attempt: status.and_then(|s| s["restartCount"].as_u64()).unwrap_or(0),
                    pod: sandbox.clone(),
                });
            }
        }
        sandboxes.push(sandbox);
    }
    (sandboxes, containers)
}

/// The images present: the pause image once any sandbox exists, plus every container's image.
pub fn images(sandboxes: &[Sandbox], containers: &[Container]) -> Vec<String> {
    let mut out: Vec<String> = containers.iter().map(|c| c.image.clone()).collect();
    if !sandboxes.is_empty() {
        out.push(PAUSE_IMAGE.to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// go-units' HumanDuration, as crictl prints ages (`5 minutes` + ` ago`).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let minutes = s / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (s as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

fn ago(t: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match t {
        Some(t) => format!("{} ago", human_duration((now - t).whole_seconds())),
        None => "Unknown".into(),
    }
}

/// Go's text/tabwriter with a minimum cell width and padding; the last column is not padded.
pub fn table(rows: &[Vec<String>], min_width: usize, padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count() + padding)
                .max()
                .unwrap_or(0)
                .max(min_width)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            }
        }
        out.push('\n');
    }
    out
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(13).collect()
}

/// `crictl ps` (`all` adds exited containers; the stand-in's containers all run).
pub fn crictl_ps(containers: &[Container], quiet: bool, now: OffsetDateTime) -> String {
    if quiet {
        return containers.iter().map(|c| format!("{}\n", c.id)).collect();
    }
    let mut rows = vec![
        [
            "CONTAINER",
            "IMAGE",
            "CREATED",
            "STATE",
            "NAME",
            "ATTEMPT",
            "POD ID",
            "POD",
            "NAMESPACE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in containers {
        rows.push(vec![
            short(&c.id),
            short(&image_id(&c.image)),
            ago(c.created, now),
            if c.running { "Running" } else { "Exited" }.into(),
            c.name.clone(),
            c.attempt.to_string(),
            short(&c.pod.id),
            c.pod.name.clone(),
            c.pod.namespace.clone(),
        ]);
    }
    table(&rows, 20, 3)
}

/// `crictl pods`.
pub fn crictl_pods(sandboxes: &[Sandbox], quiet: bool, now: OffsetDateTime) -> String {
    if quiet {
        return sandboxes.iter().map(|s| format!("{}\n", s.id)).collect();
    }
    let mut rows = vec![
        [
            "POD ID",
            "CREATED",
            "STATE",
            "NAME",
            "NAMESPACE",
            "ATTEMPT",
            "RUNTIME",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in sandboxes {
        rows.push(vec![
            short(&s.id),
            ago(s.created, now),
            if s.ready { "Ready" } else { "NotReady" }.into(),
            s.name.clone(),
            s.namespace.clone(),
            "0".into(),
            "(default)".into(),
        ]);
    }
    table(&rows, 20, 3)
}

/// `crictl images`.
pub fn crictl_images(images: &[String], quiet: bool) -> String {
    if quiet {
        return images
            .iter()
            .map(|i| format!("{}\n", image_id(i)))
            .collect();
    }
    let mut rows = vec![
        ["IMAGE", "TAG", "IMAGE ID", "SIZE"]
            .map(String::from)
            .to_vec(),
    ];
    for i in images {
        let (repo, tag) = repo_and_tag(i);
        rows.push(vec![repo, tag, short(&image_id(i)), "0B".into()]);
    }
    table(&rows, 20, 3)
}

/// `ctr containers list`: sandbox (pause) containers and app containers, full ids.
pub fn ctr_containers(sandboxes: &[Sandbox], containers: &[Container], quiet: bool) -> String {
    let mut entries: Vec<(String, String)> = sandboxes
        .iter()
        .filter(|s| s.ready)
        .map(|s| (s.id.clone(), PAUSE_IMAGE.to_string()))
        .chain(containers.iter().map(|c| (c.id.clone(), c.image.clone())))
        .collect();
    entries.sort();
    if quiet {
        return entries.iter().map(|(id, _)| format!("{id}\n")).collect();
    }
    let mut rows = vec![["CONTAINER", "IMAGE", "RUNTIME"].map(String::from).to_vec()];
    for (id, image) in entries {
        rows.push(vec![id, image, "io.containerd.runc.v2".into()]);
    }
    table(&rows, 4, 4)
}

/// `ctr images list`.
pub fn ctr_images(images: &[String], quiet: bool) -> String {
    if quiet {
        return images.iter().map(|i| format!("{i}\n")).collect();
    }
    let mut rows = vec![
        ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"]
            .map(String::from)
            .to_vec(),
    ];
    for i in images {
        rows.push(vec![
            i.clone(),
            "application/vnd.oci.image.index.v1+json".into(),
            format!("sha256:{}", hex_id(&format!("digest:{i}"))),
            "0.0 B".into(),
            "linux/amd64".into(),
            "io.cri-containerd.image=managed".into(),
        ]);
    }
    table(&rows, 4, 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, phase: &str, image: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "kube-system", "uid": format!("uid-{name}"),
                          "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": image}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "main", "restartCount": 2,
                       "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}]},
        })
    }

    #[test]
    fn images_are_normalised_like_docker_references() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normalize_image("rancher/mirrored-coredns-coredns:1.12.3"),
            "docker.io/rancher/mirrored-coredns-coredns:1.12.3"
        );
        assert_eq!(
            normalize_image("registry.lab:5000/team/app:v1"),
            "registry.lab:5000/team/app:v1"
        );
        assert_eq!(
            repo_and_tag("registry.lab:5000/team/app:v1"),
            ("registry.lab:5000/team/app".into(), "v1".into())
        );
        assert_eq!(
            repo_and_tag("docker.io/library/x@sha256:ab").1,
            "<none>".to_string()
        );
    }

    #[test]
    fn running_pods_have_containers_pending_ones_only_a_sandbox() {
        let pods = [
            pod(
                "coredns-1",
                "Running",
                "rancher/mirrored-coredns-coredns:1.12.3",
            ),
            pod("web-1", "Pending", "nginx"),
        ];
        let (sandboxes, containers) = from_pods(&pods);
        assert_eq!(sandboxes.len(), 2);
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0].attempt, 2);
        let now = crate::clock::parse_rfc3339("2026-01-01T00:05:05Z").expect("time");
        let ps = crictl_ps(&containers, false, now);
        let lines: Vec<&str> = ps.lines().collect();
        assert!(lines[0].starts_with("CONTAINER           IMAGE   "), "{ps}");
        assert!(lines[1].contains("5 minutes ago"), "{ps}");
        assert!(lines[1].contains("Running"), "{ps}");
        assert!(
            lines[1].ends_with("coredns-1           kube-system"),
            "{ps}"
        );
        let pods_text = crictl_pods(&sandboxes, false, now);
        assert!(pods_text.contains("NotReady"), "{pods_text}");
        let imgs = images(&sandboxes, &containers);
        assert_eq!(
            imgs,
            [
                "docker.io/rancher/mirrored-coredns-coredns:1.12.3",
                PAUSE_IMAGE
            ]
        );
        let ctr = ctr_containers(&sandboxes, &containers, false);
        assert_eq!(ctr.lines().count(), 3, "header, one pause, one app: {ctr}");
        assert!(ctr_images(&imgs, true).contains(PAUSE_IMAGE));
        assert_eq!(crictl_images(&imgs, false).lines().count(), 3);
    }

    #[test]
    fn ages_read_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
