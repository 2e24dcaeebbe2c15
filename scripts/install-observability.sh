#!/usr/bin/env bash
# Install what the monitoring tests and a host-side Prometheus need, when missing, from Debian:
#   prometheus (2.42: the server and promtool, which checks docker/prometheus/*.yml) and
#   prometheus-pushgateway (1.5: where the monitor job pushes its verdict).
# The container stack does not need this: docker/Dockerfile.prometheus and
# docker/Dockerfile.pushgateway install the same packages inside their images. Grafana and the
# StatsD exporter are not in Debian; the stack runs their upstream images where a registry is
# reachable (GRAFANA_IMAGE, STATSD_EXPORTER_IMAGE in .env).
# The packages' services are not started (policy-rc.d denies it while installing): the tests start
# their own servers on free ports. Idempotent: a second run installs nothing. Needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-observability: needs root (or sudo) to apt-get install" >&2; exit 1
  fi
fi

# Debian package -> a file it installs (present: nothing to do)
declare -A PKG=(
  [prometheus]=/usr/bin/promtool
  [prometheus-pushgateway]=/usr/bin/prometheus-pushgateway
)
missing=()
for pkg in "${!PKG[@]}"; do
  [ -e "${PKG[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-observability: installing ${missing[*]}"
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
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "install-observability: $(prometheus --version 2>&1 | head -1 | awk '{print $1, $3}')," \
  "$(prometheus-pushgateway --version 2>&1 | head -1 | awk '{print $1, $3}') ready"
