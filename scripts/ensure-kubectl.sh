#!/usr/bin/env bash
# Puts Debian's kubectl 1.20 (package kubernetes-client) in a cache directory and prints its path.
# /usr/bin/kubectl belongs to another Debian package, so the package is unpacked with dpkg -x
# instead of installed. Tests use it as an independent referee of what the cluster looks like.
set -euo pipefail
cache="${K3SCTL_CACHE:-/var/cache/k3sctl-lab}/kubectl"
bin="$cache/root/usr/bin/kubectl"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  cd "$cache"
  rm -f kubernetes-client_*.deb
  apt-get download kubernetes-client >/dev/null 2>&1
  dpkg -x kubernetes-client_*.deb root
fi
"$bin" version --client >/dev/null
echo "$bin"
