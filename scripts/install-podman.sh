#!/usr/bin/env bash
# Install what the serving image, the blue/green deploy and `make stack` need, when missing:
#   from Debian: podman (container engine), its dnsname CNI plugin (containers on one compose
#   network resolve each other by service name), debootstrap (offline base image), nginx (stable
#   address in front of the serving containers), wrk (load generator for `make bench`) and
#   docker-compose 1.29 (only to validate docker-compose.yml; it needs no daemon);
#   from PyPI: podman-compose, pinned, in its own virtualenv (/opt/podman-compose, linked into
#   /usr/local/bin). A tool of the machine like podman itself, not of the project: it stays out
#   of requirements.lock (the app's pins) and works before `make setup` has built .venv.
# Then write the two containers.conf settings podman needs on these machines (shared/STACK-NOTES.md):
#   [engine] runtime = "runc"            crun refuses the hybrid cgroups here
#   [containers] default_ulimits = [...]  limits above the current hard limit are refused
# Idempotent: a second run installs nothing and rewrites nothing. Needs root (or sudo).
set -euo pipefail

# podman-compose and its two dependencies, exactly: the version shared/STACK-NOTES.md verified
# with podman 4.3 here (Debian's podman-compose is 1.0.3)
PODMAN_COMPOSE_PINS=(podman-compose==1.6.0 python-dotenv==1.2.4 PyYAML==6.0.4)
TOOLS_VENV="${PODMAN_COMPOSE_VENV:-/opt/podman-compose}"

. "$(dirname "$0")/lib/apt.sh"
SUDO="$(root_prefix install-podman)"

# Debian package = a file it installs (present: nothing to do); their services are not started
apt_install_missing install-podman \
  podman=/usr/bin/podman \
  runc=/usr/sbin/runc \
  golang-github-containernetworking-plugin-dnsname=/usr/lib/cni/dnsname \
  debootstrap=/usr/sbin/debootstrap \
  nginx=/usr/sbin/nginx \
  wrk=/usr/bin/wrk \
  docker-compose=/usr/bin/docker-compose \
  python3-venv=/usr/lib/python3.11/ensurepip/__init__.py

# podman-compose from PyPI into its own virtualenv, on Debian's python3 (not a pyenv or project
# interpreter that may be replaced); reinstalled only when the pins change.
pins_file="$TOOLS_VENV/pins.txt"
if [ "$(cat "$pins_file" 2>/dev/null)" != "${PODMAN_COMPOSE_PINS[*]}" ]; then
  echo "install-podman: ${PODMAN_COMPOSE_PINS[*]} into $TOOLS_VENV"
  $SUDO rm -rf "$TOOLS_VENV"
  $SUDO /usr/bin/python3 -m venv "$TOOLS_VENV"
  $SUDO "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check --no-deps \
    "${PODMAN_COMPOSE_PINS[@]}"
  echo "${PODMAN_COMPOSE_PINS[*]}" | $SUDO tee "$pins_file" >/dev/null
fi
$SUDO ln -sf "$TOOLS_VENV/bin/podman-compose" /usr/local/bin/podman-compose

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
echo "install-podman: podman $(podman --version | awk '{print $3}'), dnsname," \
  "$(podman-compose --version 2>/dev/null | grep -i 'podman-compose version' | awk '{print $NF}' \
     | sed 's/^/podman-compose /'), nginx, wrk, debootstrap, docker-compose ready"
