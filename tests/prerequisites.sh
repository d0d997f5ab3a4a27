#!/usr/bin/env bash
# Installs what the tests need on a Debian or Ubuntu controller (as root). With `unit`, what the
# unit tests call (make unit): visudo, nginx -t, systemd-analyze, openssl, promtool. Without, also what
# the target harness needs: Docker's engine (Debian's docker.io), debootstrap, Pebble (the
# test ACME server) and BIND (its DNS), shellcheck for tests/lint.sh, and the browser the tests drive (tests/browser.py).
# Usage: prerequisites.sh [unit]
set -euo pipefail

declare -A wanted=(
  [openssl]=openssl
  [visudo]=sudo
  [nginx]=nginx-light
  [systemd-analyze]=systemd
)
if [[ "${1:-}" != unit ]]; then
  wanted+=(
    [dockerd]=docker.io
    [debootstrap]=debootstrap
    [iptables-save]=iptables
    [ssh-keygen]=openssh-client
    [pebble]=pebble
    [named]=bind9
    [shellcheck]=shellcheck
    [chromium]=chromium
  )
fi
missing=()
# Debian's python3 makes venvs only with python3-venv (ensurepip).
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
for command in "${!wanted[@]}"; do
  command -v "$command" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$command" >/dev/null 2>&1 \
    || missing+=("${wanted[$command]}")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "Missing packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "Installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # nginx only for `nginx -t` in the unit tests, BIND only as the tests start it (tests/dns.py): keep
  # them from serving on this machine.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now nginx named 2>/dev/null || true
  fi
fi
# promtool (the unit tests check the rules and Prometheus's config with it, and run its rule tests):
# taken from the distribution's prometheus package, which is not installed (no daemon starts here).
if ! command -v promtool >/dev/null 2>&1; then
  if [[ $EUID -ne 0 ]]; then
    echo "Missing promtool (run as root, or put Debian's prometheus package's promtool on PATH)" >&2
    exit 1
  fi
  echo "Installing promtool from the distribution's prometheus package" >&2
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  (cd "$download" && apt-get download -qq prometheus 2>/dev/null) || { apt-get update -qq && (cd "$download" && apt-get download -qq prometheus); }
  dpkg-deb -x "$download"/prometheus_*.deb "$download/root"
  install -m 755 "$download/root/usr/bin/promtool" /usr/local/bin/promtool
fi
