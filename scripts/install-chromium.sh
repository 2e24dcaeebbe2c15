#!/usr/bin/env bash
# Install Debian's Chromium and its WebDriver (chromedriver), when missing: what the browser
# check of the MLflow screens (tests/integration/test_mlflow_browser.py) drives headless.
# A tool of the machine, not of the project: it stays out of requirements.lock.
# Idempotent: a second run installs nothing. Needs root (or sudo).
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver
chromium --version
chromedriver --version
