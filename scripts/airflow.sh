#!/usr/bin/env bash
# `make airflow`: Airflow on this machine with the nightly DAG loaded, on the embedded defaults
# (SQLite metadata DB in airflow_home/, LocalExecutor), then print the URL and the login.
#
# Everything is an environment setting (Airflow's own AIRFLOW__SECTION__KEY convention), so any
# of them can be overridden from the shell; nothing machine-specific is written to the repo:
#   AIRFLOW_PORT=8081 make airflow                                   # another port
#   AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://... make airflow
#   RETRAIN_PARAMS=/path/to/params.yaml make airflow                 # another workspace
#   AIRFLOW_CONN_SMTP_DEFAULT=... AIRFLOW_VAR_...=...                # connections / variables
# Stop with Ctrl-C.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$REPO/.venv/bin/airflow" ]]; then
    # `airflow standalone` starts its components as `airflow ...` from PATH: make it this venv's
    export PATH="$REPO/.venv/bin:$PATH"
fi
command -v airflow >/dev/null || { echo "airflow not found: run 'make setup' first" >&2; exit 1; }
PY="$(dirname "$(command -v airflow)")/python"  # the interpreter Airflow is installed in

export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$REPO/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
# LocalExecutor forks one worker per parallelism slot (32 by default): a night runs one task at a
# time, and the machine may have two cores.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-2}"
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="${AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES:-1}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
PORT="${AIRFLOW_PORT:-${AIRFLOW__API__PORT:-8080}}"
HOST="${AIRFLOW__API__HOST:-127.0.0.1}"  # this machine only; AIRFLOW__API__HOST=0.0.0.0 to share
export AIRFLOW__API__PORT="$PORT" AIRFLOW__API__HOST="$HOST"
url="http://127.0.0.1:$PORT"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-$url}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-$url/execution/}"
export DVC_NO_ANALYTICS=1 GIT_PYTHON_REFRESH=quiet MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
mkdir -p "$AIRFLOW_HOME"

if [[ -z "${RETRAIN_PARAMS:-}${AIRFLOW_VAR_RETRAIN_PARAMS:-}" && ! -d "$REPO/data/prepared" ]]; then
    echo "note: the workspace has no prepared data yet; run 'make run' once (prepares the data"
    echo "      and trains the first champion) before triggering a night."
fi

# standalone runs scheduler, dag-processor, triggerer and api-server and stops them on SIGINT (on
# SIGTERM it dies and leaves them running). Job control (-m) gives it its own process group and
# keeps SIGINT working (a plain `cmd &` in a script ignores it).
set -m
airflow standalone &
pid=$!
set +m
alive() { kill -0 "$pid" 2>/dev/null; }
stop() {
    trap - INT TERM
    echo "stopping Airflow..."
    kill -INT "$pid" 2>/dev/null || true  # standalone stops its components and exits
    for _ in $(seq 1 30); do alive || break; sleep 1; done
    if alive; then  # SIGINT was ignored (started from a background job): components first
        pkill -TERM -P "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do pgrep -P "$pid" >/dev/null || break; sleep 1; done
        kill -TERM "$pid" 2>/dev/null || true
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true  # anything left in standalone's process group
    exit 0
}
trap stop INT TERM

for _ in $(seq 1 180); do
    if "$PY" - "$url" <<'PY' 2>/dev/null; then
import json, sys, urllib.request
health = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v2/monitor/health", timeout=2))
sys.exit(0 if health["scheduler"]["status"] == "healthy" else 1)
PY
        break
    fi
    kill -0 "$pid" 2>/dev/null || { echo "airflow standalone exited" >&2; exit 1; }
    sleep 1
done

passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated}"
login="$("$PY" - "$passwords" <<'PY' 2>/dev/null || echo "see $passwords"
import json, sys
print(", ".join(f"{user} / {password}" for user, password in json.load(open(sys.argv[1])).items()))
PY
)"
# each night puts its run's note (the night's date and outcome) through the REST API, as the
# user of the connection retrain_airflow_api (the task SDK cannot): kept in the metastore
"$PY" - "$passwords" "$url" <<'PY' 2>/dev/null || echo "note: connection retrain_airflow_api not set; runs get no note"
import json, sys, urllib.error, urllib.parse, urllib.request
users = json.load(open(sys.argv[1]))
user = "admin" if "admin" in users else next(iter(users))
base = sys.argv[2]
def call(method, path, body, token=None):
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    req = urllib.request.Request(base + path, json.dumps(body).encode(), headers, method=method)
    return json.load(urllib.request.urlopen(req, timeout=10))
token = call("POST", "/auth/token", {"username": user, "password": users[user]})["access_token"]
host = urllib.parse.urlsplit(base)
conn = {"connection_id": "retrain_airflow_api", "conn_type": "http", "host": host.hostname,
        "port": host.port, "login": user, "password": users[user]}
try:
    call("PATCH", "/api/v2/connections/retrain_airflow_api", conn, token)
except urllib.error.HTTPError as err:
    if err.code != 404:
        raise
    call("POST", "/api/v2/connections", conn, token)
PY
cat <<EOF

  Airflow is up:   $url   (DAG: retrain_nightly, paused until you switch it on)
  Login:           $login
  Trigger a night: DAG retrain_nightly > Trigger (play button) > fill in the form > Trigger
  AIRFLOW_HOME:    $AIRFLOW_HOME   (SQLite, LocalExecutor; delete it to start afresh)
  Stop:            Ctrl-C

EOF
wait "$pid" || true
kill -TERM -- "-$pid" 2>/dev/null || true  # standalone exited on its own: its components too
