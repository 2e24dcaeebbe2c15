#!/usr/bin/env bash
# Install what the serving image and the blue/green deploy need, from Debian, when missing:
# podman (container engine), debootstrap (offline base image), nginx (stable address in front of
# the serving containers) and wrk (load generator for `make bench`). Then write the two
# containers.conf settings podman needs on these machines (see shared/STACK-NOTES.md):
#   [engine] runtime = "runc"            crun refuses the hybrid cgroups here
#   [containers] default_ulimits = [...]  limits above the current hard limit are refused
# Idempotent: a second run installs nothing and rewrites nothing. Needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-podman: needs root (or sudo) to apt-get install" >&2; exit 1
  fi
fi

# command -> Debian package
declare -A PKG=([podman]=podman [debootstrap]=debootstrap [nginx]=nginx [wrk]=wrk)
missing=()
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${PKG[$cmd]}")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-podman: installing ${missing[*]}"
  # Packages must not start their services (nginx would take port 80): deny it while installing.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && $SUDO rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" runc >/dev/null
fi

conf=/etc/containers/containers.conf
want_runtime='runtime = "runc"'
want_ulimits='default_ulimits = ["nofile=10000:10000", "nproc=5000:5000"]'
if ! { [ -f "$conf" ] && grep -qF "$want_runtime" "$conf" && grep -qF "$want_ulimits" "$conf"; }; then
  $SUDO mkdir -p /etc/containers
  [ -f "$conf" ] && $SUDO cp "$conf" "$conf.bak"
  printf '# written by scripts/install-podman.sh\n[containers]\n%s\n\n[engine]\n%s\n' \
    "$want_ulimits" "$want_runtime" | $SUDO tee "$conf" >/dev/null
  echo "install-podman: wrote $conf"
fi
echo "install-podman: podman $(podman --version | awk '{print $3}'), nginx, wrk, debootstrap ready"
