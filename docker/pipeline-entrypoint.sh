#!/bin/sh
# Entrypoint of the pipeline image. Airflow's simple auth manager reads its users' passwords
# from a JSON file it may also write (AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE): when
# AIRFLOW_ADMIN_PASSWORD is set (the api-server, from .env), write that file so the login is the
# one in .env instead of a password generated into the container's log. Then run the command.
set -eu
file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}"
if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ] && [ -n "$file" ]; then
  umask 077
  python3 - "$file" <<'PY'
import json, os, sys
users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
admin = users.split(",")[0].split(":")[0].strip()
with open(sys.argv[1], "w") as f:
    json.dump({admin: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
PY
fi
exec "$@"
