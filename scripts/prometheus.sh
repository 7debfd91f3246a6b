#!/usr/bin/env bash
# Install Debian's Prometheus server (/usr/bin/prometheus) for tests/serve/test_prometheus.py.
# Only the binary is needed: the test runs it as a plain child process with its own config, TSDB in
# a temporary directory and a free loopback port; it never uses the system service.
# Safe to run again: it installs only when the binary is missing. Installing needs root (apt-get).
set -euo pipefail

log() { printf 'prometheus: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "needs root for: $*"; return 1
  fi
}

if [ -x /usr/bin/prometheus ]; then
  log "already installed: $(/usr/bin/prometheus --version 2>&1 | head -n 1)"
  exit 0
fi
log "installing prometheus (Debian package)"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
/usr/bin/prometheus --version 2>&1 | head -n 1 >&2
