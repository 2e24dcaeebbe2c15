#!/usr/bin/env bash
# Install what the monitoring tests and a host-side Prometheus need, when missing, from Debian:
#   prometheus (2.42: the server and promtool, which checks docker/prometheus/*.yml) and
#   prometheus-pushgateway (1.5: where the monitor job pushes its verdict).
# The container stack does not need this: docker/Dockerfile.prometheus and
# docker/Dockerfile.pushgateway install the same packages inside their images. Grafana is not
# in Debian; the stack runs its upstream image where a registry is reachable (GRAFANA_IMAGE in
# .env).
# Their services are not started (scripts/lib/apt.sh). Idempotent: a second run installs nothing.
# Needs root (or sudo).
set -euo pipefail

. "$(dirname "$0")/lib/apt.sh"

# Debian package = a file it installs (present: nothing to do)
apt_install_missing install-observability \
  prometheus=/usr/bin/promtool \
  prometheus-pushgateway=/usr/bin/prometheus-pushgateway

echo "install-observability: $(prometheus --version 2>&1 | head -1 | awk '{print $1, $3}')," \
  "$(prometheus-pushgateway --version 2>&1 | head -1 | awk '{print $1, $3}') ready"
