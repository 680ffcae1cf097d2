#!/usr/bin/env bash
# The main job on a local lab, from a fresh Debian 12 machine (as root):
# installs the system packages, builds k3sctl, k3sctl-lab and the k3s-sim stand-in, boots a lab of
# 4 hosts (Debian containers with systemd and sshd), then runs k3sctl validate, plan and apply on
# the spec the lab wrote and shows the nodes with Debian's kubectl 1.20.
#
# Environment: DEMO_HOSTS (default 4), CARGO_TARGET_DIR (default ./target),
# DEMO_DIR (where the spec goes, default /var/tmp/k3sctl-demo).
set -euo pipefail
cd "$(dirname "$0")/.."

lab_name=demo
hosts="${DEMO_HOSTS:-4}"
demo_dir="${DEMO_DIR:-/var/tmp/k3sctl-demo}"
spec="$demo_dir/cluster.yaml"

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (the lab boots containers and sets up network namespaces)" >&2
  exit 1
fi
if ! command -v cargo >/dev/null; then
  echo "demo.sh: cargo not found. Install Rust with rustup (https://rustup.rs), then re-run." >&2
  exit 1
fi

step "Installing Debian packages (scripts/install-deps.sh)"
scripts/install-deps.sh

step "Building k3sctl, k3sctl-lab and the k3s-sim stand-in"
cargo build --locked -p k3sctl -p lab -p k3s-sim --bins
target="${CARGO_TARGET_DIR:-$PWD/target}/debug"
k3sctl="$target/k3sctl"
lab="$target/k3sctl-lab"

step "Booting lab '$lab_name' with $hosts hosts (first run builds the base image, ~1 min)"
mkdir -p "$demo_dir"
"$lab" up --name "$lab_name" --hosts "$hosts" --spec-out "$spec"
echo "spec written to $spec"

step "k3sctl validate"
"$k3sctl" validate -c "$spec"

step "k3sctl plan"
"$k3sctl" plan -c "$spec"

step "k3sctl apply"
"$k3sctl" apply -c "$spec" --yes

step "Nodes, seen by Debian's kubectl 1.20 through the exported kubeconfig"
kubectl="${K3SCTL_KUBECTL:-$(scripts/ensure-kubectl.sh)}"
kubeconfig="/var/lib/k3sctl-lab/$lab_name/kubeconfig.yaml"
"$kubectl" --kubeconfig "$kubeconfig" get nodes -o wide

step "Re-running apply: nothing to do"
"$k3sctl" apply -c "$spec" --yes

cat <<EOT

The cluster runs on lab '$lab_name'. Try:
  $kubectl --kubeconfig $kubeconfig get pods -A
  $k3sctl plan -c $spec
  $lab status $lab_name
  $lab ssh $lab_name-1
Tear it down with:
  $lab down $lab_name
EOT
