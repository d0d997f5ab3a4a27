#!/usr/bin/env bash
# Installs what the target harness needs on a Debian or Ubuntu controller (as root):
# Docker's engine (Debian's docker.io), debootstrap, Pebble (the test ACME server),
# and the tools the tests call (shellcheck for tests/lint.sh).
set -euo pipefail

declare -A wanted=(
  [dockerd]=docker.io
  [debootstrap]=debootstrap
  [iptables-save]=iptables
  [ssh-keygen]=openssh-client
  [openssl]=openssl
  [visudo]=sudo
  [nginx]=nginx-light
  [pebble]=pebble
  [shellcheck]=shellcheck
)
missing=()
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
  # nginx only for `nginx -t` in the unit tests: keep it from serving on this machine.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now nginx 2>/dev/null || true
  fi
fi
