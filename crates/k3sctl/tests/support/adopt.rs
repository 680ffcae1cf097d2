//! Helpers of the adoption tests on the lab (`e2e_adopt`, `e2e_adopt_ha`): the lab's own spec
//! read back, files written into a host as another tool writes them, the admin kubeconfig,
//! what identifies a running K3s, the plan and the apply of an adoption, `init
//! --from-ansible`, and waiting for the Nodes. Each test file includes it next to
//! `support/e2e.rs`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use lab::{Lab, SpecOptions};

use super::e2e::{k3sctl, kube, text};

/// The spec the lab writes for itself (`lab-spec.yaml` in the lab dir), read back: the hosts'
/// addresses, the ssh settings and the stand-in binary as another tool's skeleton needs them.
pub struct LabSpec {
    /// The spec as JSON.
    #[allow(dead_code)]
    pub yaml: serde_json::Value,
    /// The stand-in binary the spec installs.
    pub binary: String,
}

impl LabSpec {
    /// Writes the lab's spec with the defaults and reads it back.
    pub fn of(lab: &Lab) -> Self {
        let path = lab.dir().join("lab-spec.yaml");
        lab.write_spec(&path, &SpecOptions::default())
            .expect("spec written");
        let yaml: serde_json::Value =
            serde_saphyr::from_str(&fs_err::read_to_string(&path).expect("spec")).expect("yaml");
        let binary = yaml["spec"]["k3s"]["binary"]["file"]
            .as_str()
            .expect("binary")
            .to_owned();
        LabSpec { yaml, binary }
    }

    /// The stand-in's bytes, to lay out as another tool installs K3s.
    pub fn k3s(&self) -> Vec<u8> {
        fs_err::read(&self.binary).expect("stand-in")
    }
}

/// Writes `content` to `path` in `host`'s root with `mode` (as another tool would).
pub fn write_root(lab: &Lab, host: &str, path: &str, content: impl AsRef<[u8]>, mode: u32) {
    lab::foreign::write_root(lab, host, path, content.as_ref(), mode)
        .expect("write into the host's root");
}

/// The admin kubeconfig of the K3s on `server`, pointed at `address`, in the lab dir, once
/// `count` Nodes are Ready.
pub fn admin_kubeconfig(lab: &Lab, server: &str, address: &str, count: usize) -> PathBuf {
    let admin = lab
        .exec(server, "cat /etc/rancher/k3s/k3s.yaml")
        .expect("admin kubeconfig");
    let kubeconfig = lab.dir().join("admin.yaml");
    fs_err::write(&kubeconfig, admin.replace("127.0.0.1", address)).expect("write");
    wait_ready(&kubeconfig, count);
    kubeconfig
}

/// What the plan says for a host whose files are taken over without a restart.
pub const ADOPT_LINE: &str = "adopt: no restart (effective configuration unchanged)";

/// What identifies a running K3s, per host: systemd's invocation and the main PID.
pub fn invocations(lab: &Lab, hosts: &[&str], units: &[&str]) -> Vec<String> {
    hosts
        .iter()
        .zip(units)
        .map(|(h, u)| {
            lab.exec(
                h,
                &format!("systemctl show -p InvocationID -p MainPID --value {u}"),
            )
            .expect("systemctl show")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
        })
        .collect()
}

/// `plan` on hosts another tool laid out: every one of the `count` hosts is adopted, none
/// restarts. Returns what the plan printed.
pub fn plan_adopts_without_restart(spec_arg: &str, count: usize) -> String {
    let plan = k3sctl(&["plan", "-c", spec_arg]);
    assert!(plan.status.success(), "plan:\n{}", text(&plan));
    let shown = text(&plan);
    assert_eq!(shown.matches(ADOPT_LINE).count(), count, "{shown}");
    assert!(!shown.contains("> restart"), "{shown}");
    shown
}

/// `k3sctl <args>`, an adopting apply: it succeeds and every K3s keeps the invocation it had
/// before (`before`, from [`invocations`]). Prints its time as `what`; returns what it printed.
pub fn apply_keeps_invocations(
    lab: &Lab,
    hosts: &[&str],
    units: &[&str],
    before: &[String],
    args: &[&str],
    what: &str,
) -> Output {
    let started = Instant::now();
    let out = k3sctl(args);
    assert!(out.status.success(), "{what}:\n{}", text(&out));
    eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(
        invocations(lab, hosts, units),
        before,
        "K3s restarted:\n{}",
        text(&out)
    );
    out
}

/// `<lab dir>/airgap` holding `binary` as `k3s`: k3s-ansible's `airgap_dir`.
pub fn airgap_dir(lab: &Lab, binary: &Path) -> PathBuf {
    let airgap = lab.dir().join("airgap");
    fs_err::create_dir_all(&airgap).expect("airgap dir");
    fs_err::copy(binary, airgap.join("k3s")).expect("airgap binary");
    airgap
}

/// What a k3s-ansible cluster is: the `version` it installs, its `token`, the `api` endpoint
/// and the `airgap` directory its binary comes from.
pub struct AnsibleCluster<'a> {
    /// `k3s_version`.
    pub version: &'a str,
    /// `token`.
    pub token: &'a str,
    /// `api_endpoint`.
    pub api: &'a str,
    /// `airgap_dir`.
    pub airgap: &'a Path,
}

/// The start of a k3s-ansible inventory's `vars:` (under `k3s_cluster`): root over port 22
/// with the lab's key, `ssh_config` and known_hosts, then `cluster`. The caller adds its role
/// arguments.
pub fn ansible_vars(lab: &Lab, ssh_config: &Path, cluster: &AnsibleCluster) -> String {
    format!(
        "  vars:\n\
         \x20   ansible_port: 22\n\
         \x20   ansible_user: root\n\
         \x20   ansible_ssh_private_key_file: {key}\n\
         \x20   ansible_ssh_common_args: \"-F {config} -o UserKnownHostsFile={kh}\"\n\
         \x20   k3s_version: {version}\n\
         \x20   token: \"{token}\"\n\
         \x20   api_endpoint: \"{api}\"\n\
         \x20   airgap_dir: {airgap}\n",
        key = lab.identity().display(),
        config = ssh_config.display(),
        kh = lab.known_hosts().display(),
        version = cluster.version,
        token = cluster.token,
        api = cluster.api,
        airgap = cluster.airgap.display(),
    )
}

/// `init --from-ansible` on `inventory` (written as `inventory.yml` in the lab dir), writing
/// the spec `spec_file` in the lab dir; neither the spec nor what k3sctl printed holds the
/// inventory's `token`. Returns the spec's path as an argument and its text.
pub fn init_from_ansible(
    lab: &Lab,
    inventory: &str,
    spec_file: &str,
    token: &str,
) -> (String, String) {
    let inventory_path = lab.dir().join("inventory.yml");
    fs_err::write(&inventory_path, inventory).expect("inventory");
    let spec = lab.dir().join(spec_file);
    let spec_arg = spec.to_string_lossy().into_owned();
    let out = k3sctl(&[
        "init",
        "-c",
        &spec_arg,
        "--from-ansible",
        &inventory_path.to_string_lossy(),
    ]);
    assert!(out.status.success(), "init --from-ansible:\n{}", text(&out));
    let written = fs_err::read_to_string(&spec).expect("spec");
    assert!(
        !written.contains(token),
        "the token in the spec:\n{written}"
    );
    assert!(!text(&out).contains(token), "the token printed");
    (spec_arg, written)
}

/// Waits (90 s at most) until `count` Nodes are Ready.
pub fn wait_ready(kubeconfig: &Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (ok, nodes) = kube(kubeconfig, &["get", "nodes", "--no-headers"]);
        let ready = nodes.lines().filter(|l| l.contains(" Ready ")).count();
        if ok && ready == count {
            return;
        }
        assert!(Instant::now() < deadline, "nodes not Ready: {nodes}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
