#!/bin/sh
# Run Prometheus (docker/Dockerfile.prometheus) with the arguments given (compose's `command:`),
# after writing the one secret its config reads from a file: MLflow's admin password for the
# `mlflow` scrape job (basic_auth.password_file in prometheus.yml). The file is in /run/retrain,
# inside the container only, readable by the prometheus user alone. Without MLFLOW_ADMIN_PASSWORD
# the file is empty and only that target fails (401).
set -eu
umask 077
printf '%s' "${MLFLOW_ADMIN_PASSWORD:-}" >/run/retrain/mlflow-password
exec prometheus "$@"
