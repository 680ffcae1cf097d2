#!/usr/bin/env bash
# Installs the Debian 12 packages k3sctl's lab, tests and demo need (run as root):
# debootstrap + systemd-container (the lab's hosts), nftables + iproute2 (the lab's network and
# faults), openssh (k3sctl and the lab talk to hosts over real ssh; sshd for the ssh edge tests),
# protobuf-compiler (etcd client build), ca-certificates + curl, etcd-server + etcd-client (k3s-sim's
# embedded etcd and etcdctl for its local HA tests; the lab image has them too).
# Shared by .ci/run and scripts/demo.sh so both install the same list.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it installs Debian packages with apt-get)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  debootstrap systemd-container nftables iproute2 openssh-client openssh-server protobuf-compiler \
  ca-certificates curl etcd-server etcd-client >/dev/null
# etcd-server's postinst may enable a node-wide etcd on 2379; the tests run their own members.
if command -v systemctl >/dev/null && systemctl is-enabled etcd >/dev/null 2>&1; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi
