#!/usr/bin/env bash
# The container stack of docker-compose.yml, for real, with podman (+ podman-compose) or docker:
#
#   scripts/stack.sh up      `make stack`: .env, images, services in order, each one waited for
#   scripts/stack.sh down    `make stack-down`: stop and remove the containers; volumes are kept
#   scripts/stack.sh build   the images only
#   scripts/stack.sh status  the containers and the health endpoints
#
# up, step by step:
# 1. .env: written from .env.example when absent, every empty key (a secret) a fresh random
#    value; keys .env lacks are added, nothing else is changed. Environment variables override it.
# 2. images, built offline: the base (BASE_IMAGE; auto: python:3.11-slim when present or pullable,
#    else docker/build-base.sh's Debian made from Debian's packages), a wheelhouse of
#    requirements.lock on the host (.wheelhouse/, remade only when the pins change), then the
#    pipeline image (pip --no-index from the wheelhouse) and PostgreSQL, Redis, nginx,
#    Prometheus and the Pushgateway from Debian's packages. Builds use the engine's layer cache:
#    an unchanged image takes seconds. Grafana is in no package archive reachable here: its
#    upstream image (GRAFANA_IMAGE) is used when present or pullable, and skipped with a
#    message otherwise.
# 3. services, in order, each waited for explicitly (podman-compose ignores health conditions):
#    postgres (pg_isready over TCP) and redis (PING with the password); mlflow (/health);
#    airflow-init (`airflow db migrate`) and workspace-init, run to completion; api-server,
#    scheduler, dag-processor, triggerer (/api/v2/monitor/health: every component healthy);
#    the two Celery workers (both answer a Celery ping through the broker); the SERVING_REPLICAS
#    serving replicas (each answers /health inside its container) and nginx (/health through
#    nginx, the stable address); monitoring: pushgateway, prometheus (ready, and every
#    configured scrape target up), grafana (/api/health).
#    Then the URLs and how to log in.
# A service that exits or keeps restarting stops the wait at once, with its log.
# Settings: .env (see .env.example); CONTAINER_ENGINE=podman|docker picks the engine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
ENV_FILE="$REPO/.env"
EXAMPLE="$REPO/.env.example"
WHEELHOUSE="$REPO/.wheelhouse"
OFFLINE_BASE="localhost/debian-python:bookworm"
UPSTREAM_BASE="python:3.11-slim"
PY="$(command -v python3)"

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --------------------------------------------------------------------------- engine
ENGINE="" COMPOSE=()
pick_engine() {
    local want="${CONTAINER_ENGINE:-}"
    if [[ "$want" != docker ]] && command -v podman >/dev/null 2>&1; then
        command -v podman-compose >/dev/null 2>&1 \
            || die "podman-compose missing: run scripts/install-podman.sh"
        ENGINE=podman COMPOSE=(podman-compose)
    elif [[ "$want" != podman ]] && command -v docker >/dev/null 2>&1 \
            && docker info >/dev/null 2>&1; then
        ENGINE=docker
        if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
        elif command -v docker-compose >/dev/null 2>&1; then COMPOSE=(docker-compose)
        else die "docker has no compose: install the compose plugin"; fi
    else
        die "no container engine: run scripts/install-podman.sh (podman, podman-compose," \
            "debootstrap, nginx), or start a docker daemon"
    fi
}

# --------------------------------------------------------------------------- .env
ensure_env() {
    "$PY" - "$EXAMPLE" "$ENV_FILE" <<'PY'
import base64, os, re, secrets, sys

example, target = sys.argv[1:]
line_re = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def keys(path):
    out = {}
    for line in open(path):
        m = line_re.match(line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def secret(key):
    if key.endswith("FERNET_KEY"):  # what cryptography's Fernet.generate_key() returns
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(32)  # 43 characters of [A-Za-z0-9_-]


want = keys(example)
new = not os.path.exists(target)
have = {} if new else keys(target)
missing = [k for k in want if k not in have]
if missing:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        if new:
            f.write("# Written by `make stack` from .env.example: secrets, keep it out of git.\n")
        for k in missing:
            f.write(f"{k}={want[k] or secret(k)}\n")
    what = "wrote" if new else "added to"
    print(f"stack: {what} {target}: {', '.join(missing)}", file=sys.stderr)
PY
    chmod 600 "$ENV_FILE"
}

declare -A DOTENV=()
load_env() {
    local key value
    while IFS=$'\t' read -r key value; do DOTENV[$key]="$value"; done < <("$PY" - "$ENV_FILE" <<'PY'
import re, sys
for line in open(sys.argv[1]):
    m = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
    if m:
        v = m.group(2).strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        print(f"{m.group(1)}\t{v}")
PY
)
}

# The value compose will use: the environment first, then .env, then the default.
setting() {
    local key="$1" default="${2:-}"
    if [[ -n "${!key+x}" ]]; then printf '%s' "${!key}"
    elif [[ -n "${DOTENV[$key]+x}" ]]; then printf '%s' "${DOTENV[$key]}"
    else printf '%s' "$default"; fi
}

# --------------------------------------------------------------------------- compose
PROJECT="" LOG=""
compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$REPO/docker-compose.yml" "$@"; }

cid() {  # the container of a service (running or not)
    $ENGINE ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1" | head -1
}

logs_of() {
    local c; c="$(cid "$1")"
    [[ -n "$c" ]] && { echo "---- $1 (last 40 lines)"; $ENGINE logs --tail 40 "$c" 2>&1; } >&2
    return 0
}

fail() {  # fail <message> [services whose logs to show]
    local msg="$1"; shift
    for s in "$@"; do logs_of "$s"; done
    say "$msg (compose output: $LOG)"
    exit 1
}

start() {  # start services without their dependencies (the order is this script's)
    compose up -d --no-deps "$@" >>"$LOG" 2>&1 || fail "could not start $*" "$@"
}

crashed() {  # a service whose container exited, or restarted 3 times or more
    local c state restarts
    c="$(cid "$1")"
    [[ -n "$c" ]] || return 1
    read -r state restarts < <($ENGINE inspect -f '{{.State.Status}} {{.RestartCount}}' "$c")
    [[ "$state" == exited || "$state" == dead || "${restarts:-0}" -ge 3 ]]
}

wait_for() {  # wait_for <label> <timeout s> <services...> -- <check command...>
    local label="$1" timeout="$2"; shift 2
    local services=() t0=$SECONDS
    while [[ "$1" != -- ]]; do services+=("$1"); shift; done
    shift
    until "$@" >/dev/null 2>&1; do
        for s in "${services[@]}"; do
            crashed "$s" && fail "$s stopped while waiting for $label" "$s"
        done
        (( SECONDS - t0 < timeout )) || fail "$label not healthy after ${timeout}s" "${services[@]}"
        sleep 2
    done
    say "$label healthy ($(( SECONDS - t0 ))s)"
}

run_once() {  # run one-shot services to completion; fail with their logs otherwise
    local s c code
    start "$@"
    for s in "$@"; do
        c="$(cid "$s")"
        code="$($ENGINE wait "$c" 2>/dev/null | tail -1)"
        [[ "$code" == 0 ]] || fail "$s failed (exit $code)" "$s"
        say "$s done"
    done
}

http_check() {  # http_check <url> [<python expression on the JSON body `j`>]
    "$PY" - "$@" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    body = r.read()
if len(sys.argv) > 2:
    j = json.loads(body)
    sys.exit(0 if eval(sys.argv[2], {"j": j}) else 1)
PY
}

champion_version() {  # champion_version <serving port> <mlflow port>: the registry's, or empty
    MLFLOW_PASSWORD="$(setting MLFLOW_ADMIN_PASSWORD)" "$PY" - "$@" <<'PY' 2>/dev/null || true
import base64, json, os, sys, urllib.error, urllib.parse, urllib.request
serving, mlflow = sys.argv[1:]
with urllib.request.urlopen(f"http://127.0.0.1:{serving}/version", timeout=3) as r:
    name = json.load(r)["model"]
query = urllib.parse.urlencode({"name": name, "alias": "champion"})
req = urllib.request.Request(
    f"http://127.0.0.1:{mlflow}/api/2.0/mlflow/registered-models/alias?{query}")
auth = base64.b64encode(f"admin:{os.environ['MLFLOW_PASSWORD']}".encode()).decode()
req.add_header("Authorization", f"Basic {auth}")
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(json.load(r)["model_version"]["version"])
except urllib.error.HTTPError:
    pass  # no such model or alias yet
PY
}

pg_ready() { $ENGINE exec "$(cid postgres)" pg_isready -q -h 127.0.0.1 -U retrain -d retrain; }
redis_ready() {
    $ENGINE exec -e REDISCLI_AUTH="$(setting REDIS_PASSWORD)" "$(cid redis)" redis-cli ping \
        | grep -q PONG
}
replicas_ready() {  # SERVING_REPLICAS serving containers run, each answering /health
    local want c count=0
    want="$(setting SERVING_REPLICAS 1)"
    for c in $($ENGINE ps -q --filter "label=com.docker.compose.project=$PROJECT" \
            --filter "label=com.docker.compose.service=serving"); do
        $ENGINE exec "$c" python -c "import urllib.request as u
u.urlopen('http://127.0.0.1:8080/health', timeout=3)" || return 1
        count=$((count + 1))
    done
    [[ "$count" -eq "$want" ]]
}
workers_ready() {  # both workers answer a ping through the broker
    local out
    out="$($ENGINE exec "$(cid airflow-worker-1)" celery \
        --app airflow.providers.celery.executors.celery_executor.app inspect ping --timeout 5 \
        2>/dev/null)" || return 1
    grep -q 'celery@airflow-worker-1: OK' <<<"$out" && grep -q 'celery@airflow-worker-2: OK' <<<"$out"
}

# --------------------------------------------------------------------------- images
BASE=""
pick_base() {
    BASE="$(setting BASE_IMAGE auto)"
    [[ "$BASE" != auto ]] && return 0
    if $ENGINE image inspect "$UPSTREAM_BASE" >/dev/null 2>&1; then BASE="$UPSTREAM_BASE"
    elif $ENGINE image inspect "$OFFLINE_BASE" >/dev/null 2>&1; then BASE="$OFFLINE_BASE"
    elif timeout 120 $ENGINE pull -q "$UPSTREAM_BASE" >>"$LOG" 2>&1; then BASE="$UPSTREAM_BASE"
    else
        say "no registry for $UPSTREAM_BASE: building $OFFLINE_BASE from Debian's packages"
        CONTAINER_ENGINE=$ENGINE bash "$REPO/docker/build-base.sh" "$OFFLINE_BASE" >>"$LOG" 2>&1 \
            || fail "docker/build-base.sh failed"
        BASE="$OFFLINE_BASE"
    fi
}

make_wheelhouse() {  # wheels for every pin, once per change of the pins
    local pip="$REPO/.venv/bin/pip" stamp
    stamp="$(cat "$REPO/requirements.lock" "$REPO/docker/requirements-server.txt" | sha256sum | cut -c1-16)"
    [[ "$(cat "$WHEELHOUSE/.pins" 2>/dev/null)" == "$stamp" ]] && return 0
    [[ -x "$pip" ]] || die "no $pip: run 'make setup' (or use 'make stack')"
    say "wheelhouse: downloading the pinned wheels into $WHEELHOUSE"
    local t0=$SECONDS
    rm -rf "$WHEELHOUSE"
    "$pip" wheel -q --disable-pip-version-check --no-deps -w "$WHEELHOUSE" \
        -r "$REPO/requirements.lock" >>"$LOG" 2>&1 || fail "pip wheel failed"
    # the image's extras, whatever this interpreter's markers say (the image's Python may differ)
    sed 's/;.*//' "$REPO/docker/requirements-server.txt" \
        | "$pip" wheel -q --disable-pip-version-check --no-deps -w "$WHEELHOUSE" -r /dev/stdin \
        >>"$LOG" 2>&1 || fail "pip wheel (docker/requirements-server.txt) failed"
    echo "$stamp" >"$WHEELHOUSE/.pins"
    say "wheelhouse: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)," \
        "$(( SECONDS - t0 ))s"
}

build_one() {  # build_one <tag> <dockerfile> <context>: localhost/ images only
    local tag="$1" file="$2" ctx="$3" t0=$SECONDS old size
    if [[ "$tag" != localhost/* ]]; then
        say "$tag: an upstream image (pulled by compose, not built)"; return 0
    fi
    old="$($ENGINE image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
    $ENGINE build -t "$tag" -f "$file" --build-arg BASE_IMAGE="$BASE" \
        --build-arg IMAGE_TAG="$tag" "$ctx" >>"$LOG" 2>&1 || fail "building $tag failed"
    size="$($ENGINE image inspect -f '{{.Size}}' "$tag")"
    say "image $tag: $(( SECONDS - t0 ))s, $(( size / 1000000 )) MB"
    local new; new="$($ENGINE image inspect -f '{{.Id}}' "$tag")"
    [[ -n "$old" && "$old" != "$new" ]] && REPLACED+=("$old")
    return 0
}

REPLACED=()  # images a build replaced: removed once no container uses them
remove_replaced() {
    local id
    for id in "${REPLACED[@]}"; do $ENGINE rmi "$id" >/dev/null 2>&1 || true; done
}

build_images() {
    local t0=$SECONDS
    pick_base
    say "base image: $BASE"
    local pipeline; pipeline="$(setting PIPELINE_IMAGE localhost/retrain-pipeline:latest)"
    [[ "$pipeline" == localhost/* ]] && make_wheelhouse
    build_one "$pipeline" "$REPO/docker/Dockerfile.pipeline" "$REPO"
    build_one "$(setting POSTGRES_IMAGE localhost/retrain-postgres:latest)" \
        "$REPO/docker/Dockerfile.postgres" "$REPO/docker"
    build_one "$(setting REDIS_IMAGE localhost/retrain-redis:latest)" \
        "$REPO/docker/Dockerfile.redis" "$REPO/docker"
    build_one "$(setting NGINX_IMAGE localhost/retrain-nginx:latest)" \
        "$REPO/docker/Dockerfile.nginx" "$REPO/docker"
    build_one "$(setting PROMETHEUS_IMAGE localhost/retrain-prometheus:latest)" \
        "$REPO/docker/Dockerfile.prometheus" "$REPO/docker"
    build_one "$(setting PUSHGATEWAY_IMAGE localhost/retrain-pushgateway:latest)" \
        "$REPO/docker/Dockerfile.pushgateway" "$REPO/docker"
    say "images ready ($(( SECONDS - t0 ))s)"
}

# Services whose only image is an upstream one (no Debian package to build it from): started
# when the image is present or can be pulled now, else skipped with the reason.
declare -A UPSTREAM_ONLY=([grafana]="GRAFANA_IMAGE docker.io/grafana/grafana:11.4.0")
SKIPPED=()
available() {  # available <service>: its upstream image is present or pulled within 90 s
    local key default image
    read -r key default <<<"${UPSTREAM_ONLY[$1]}"
    image="$(setting "$key" "$default")"
    $ENGINE image inspect "$image" >/dev/null 2>&1 && return 0
    if timeout 90 $ENGINE pull -q "$image" >>"$LOG" 2>&1; then return 0; fi
    say "$1: image $image not present and not pullable (no registry?): not started"
    SKIPPED+=("$1")
    return 1
}

# --------------------------------------------------------------------------- up / down
SERVICES=(postgres redis mlflow airflow-init workspace-init airflow-apiserver airflow-scheduler
          airflow-dag-processor airflow-triggerer airflow-worker-1 airflow-worker-2 serving nginx
          pushgateway prometheus grafana)

stale_containers() {  # a container runs an image other than its tag's current one
    local s c image want
    for s in "${SERVICES[@]}"; do
        c="$(cid "$s")"
        [[ -n "$c" ]] || continue
        image="$($ENGINE inspect -f '{{.Image}}' "$c")"
        want="$($ENGINE image inspect -f '{{.Id}}' "$($ENGINE inspect -f '{{.ImageName}}' "$c" \
            2>/dev/null || $ENGINE inspect -f '{{.Config.Image}}' "$c")" 2>/dev/null || true)"
        [[ -n "$want" && "$image" != "$want" ]] && return 0
    done
    return 1
}

up() {
    local datasets
    datasets="$(setting RETRAIN_DATASETS ../shared/datasets)"
    [[ "$datasets" = /* ]] || datasets="$REPO/$datasets"
    [[ -d "$datasets" ]] || die "RETRAIN_DATASETS: no folder $datasets (it must hold adult/)"
    [[ "$(setting SERVING_REPLICAS 1)" =~ ^([1-9]|1[0-6])$ ]] \
        || die "SERVING_REPLICAS: a whole number from 1 to 16, got '$(setting SERVING_REPLICAS 1)'"
    build_images
    if stale_containers; then  # rebuilt images: restart everything in order (volumes kept)
        say "images changed: restarting the stack"
        compose down >>"$LOG" 2>&1 || true
    fi
    remove_replaced

    local t0=$SECONDS
    local aport mport sport
    aport="$(setting AIRFLOW_PORT 8080)" mport="$(setting MLFLOW_PORT 5000)"
    sport="$(setting SERVING_PORT 8000)"
    start postgres redis
    wait_for postgres 120 postgres -- pg_ready
    wait_for redis 60 redis -- redis_ready
    start mlflow
    wait_for "mlflow (http://127.0.0.1:$mport/health)" 240 mlflow -- \
        http_check "http://127.0.0.1:$mport/health"
    run_once airflow-init workspace-init
    start airflow-apiserver airflow-scheduler airflow-dag-processor airflow-triggerer
    wait_for "airflow (api-server, scheduler, dag-processor, triggerer)" 300 \
        airflow-apiserver airflow-scheduler airflow-dag-processor airflow-triggerer -- \
        http_check "http://127.0.0.1:$aport/api/v2/monitor/health" \
        "all(j.get(k, {}).get('status') == 'healthy' for k in
             ('metadatabase', 'scheduler', 'dag_processor', 'triggerer'))"
    start airflow-worker-1 airflow-worker-2
    wait_for "celery workers (2)" 300 airflow-worker-1 airflow-worker-2 -- workers_ready
    start serving
    wait_for "serving replicas ($(setting SERVING_REPLICAS 1))" 180 serving -- replicas_ready
    start nginx
    wait_for "serving behind nginx (http://127.0.0.1:$sport/health)" 180 serving nginx -- \
        http_check "http://127.0.0.1:$sport/health"
    start_monitoring
    say "stack healthy in $(( SECONDS - t0 ))s"
    print_access "$aport" "$mport" "$sport"
}

start_monitoring() {
    local pport gport
    pport="$(setting PROMETHEUS_PORT 9090)" gport="$(setting GRAFANA_PORT 3000)"
    start pushgateway
    start prometheus
    wait_for "prometheus (http://127.0.0.1:$pport/-/ready)" 120 prometheus pushgateway -- \
        http_check "http://127.0.0.1:$pport/-/ready"
    # the first scrapes: every configured target answers through the compose network (a job
    # that cannot be up here is not configured: docker/prometheus/prometheus.yml)
    wait_for "prometheus targets (every one up)" 90 prometheus pushgateway -- \
        http_check "http://127.0.0.1:$pport/api/v1/targets?state=active" \
        "({t['labels']['job'] for t in j['data']['activeTargets']} >= {'serving', 'pushgateway'}
          and all(t['health'] == 'up' for t in j['data']['activeTargets']))"
    if available grafana; then
        start grafana
        wait_for "grafana (http://127.0.0.1:$gport/api/health)" 180 grafana -- \
            http_check "http://127.0.0.1:$gport/api/health" "j.get('database') == 'ok'"
    fi
}

print_access() {
    local aport="$1" mport="$2" sport="$3" worker champion
    local pport gport grafana
    pport="$(setting PROMETHEUS_PORT 9090)" gport="$(setting GRAFANA_PORT 3000)"
    worker="$(cid airflow-worker-1)"
    worker="$($ENGINE inspect -f '{{.Name}}' "$worker" | sed 's#^/##')"
    local t0=$SECONDS version
    version="$(champion_version "$sport" "$mport")"
    while [[ -n "$version" ]] && ! http_check "http://127.0.0.1:$sport/ready" 2>/dev/null \
            && (( SECONDS - t0 < 60 )); do
        sleep 2  # the serving app loads the registry's champion in the background
    done
    if [[ -n "$version" ]]; then
        champion="serving the champion, v$version: http://127.0.0.1:$sport/version"
    else
        champion="no champion yet: $ENGINE exec $worker retrain run  (prepares the data, trains v1)"
    fi
    if [[ " ${SKIPPED[*]} " == *" grafana "* ]]; then
        grafana="not started: no image (GRAFANA_IMAGE); dashboard file docker/grafana/dashboards/"
    else
        grafana="http://127.0.0.1:$gport    user admin, password GRAFANA_ADMIN_PASSWORD in .env"
    fi
    cat <<EOF

  Airflow   http://127.0.0.1:$aport    user admin, password AIRFLOW_ADMIN_PASSWORD in .env
            DAG retrain_nightly starts paused: switch it on in the UI (or PATCH is_paused)
  MLflow    http://127.0.0.1:$mport    user admin, password MLFLOW_ADMIN_PASSWORD in .env
            (clients: MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=...)
  Serving   http://127.0.0.1:$sport    POST /predict with "Authorization: Bearer \$RETRAIN_SERVE_TOKEN"
            POST /feedback (outcomes) with "Authorization: Bearer \$RETRAIN_FEEDBACK_TOKEN"
            $champion
  Prometheus http://127.0.0.1:$pport   alerts: /classic/alerts; rules docker/prometheus/alerts.yml
  Grafana   $grafana
  Secrets   grep -E '^(AIRFLOW_ADMIN_PASSWORD|MLFLOW_ADMIN_PASSWORD|RETRAIN_SERVE_TOKEN|RETRAIN_FEEDBACK_TOKEN|GRAFANA_ADMIN_PASSWORD)=' .env
  Commands  $ENGINE exec -it $worker retrain status     (the workspace: volume ${PROJECT}_workspace)
  Config    /workspace/params.yaml and params/ in that volume: your edits there survive
            stack-down / stack (merged with a new image's; a clash stops make stack and says so)
  Stop      make stack-down   (volumes kept; '$ENGINE volume ls' lists them)

EOF
}

down() {
    if [[ -z "$($ENGINE ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ]]; then
        say "no containers of project $PROJECT"; return 0
    fi
    compose down >>"$LOG" 2>&1 || fail "compose down failed"
    say "stopped project $PROJECT; volumes kept:" \
        "$($ENGINE volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | tr '\n' ' ')"
}

status() {
    compose ps
    local aport mport sport pport gport
    aport="$(setting AIRFLOW_PORT 8080)" mport="$(setting MLFLOW_PORT 5000)"
    sport="$(setting SERVING_PORT 8000)"
    pport="$(setting PROMETHEUS_PORT 9090)" gport="$(setting GRAFANA_PORT 3000)"
    for url in "http://127.0.0.1:$aport/api/v2/monitor/health" "http://127.0.0.1:$mport/health" \
               "http://127.0.0.1:$sport/health" "http://127.0.0.1:$sport/ready" \
               "http://127.0.0.1:$pport/-/ready" "http://127.0.0.1:$gport/api/health"; do
        if http_check "$url" 2>/dev/null; then echo "ok       $url"; else echo "FAILING  $url"; fi
    done
}

main() {
    local action="${1:-up}"
    pick_engine
    if [[ "$action" == engine ]]; then  # `make stack` asks first, before building anything
        say "container engine: $ENGINE (${COMPOSE[*]})"
        return 0
    fi
    ensure_env
    load_env
    PROJECT="$(setting COMPOSE_PROJECT_NAME retrain)"
    LOG="${TMPDIR:-/tmp}/retrain-stack-$PROJECT.log"
    : >"$LOG"
    case "$action" in
        up) up ;;
        down) down ;;
        build) build_images; remove_replaced ;;
        status) status ;;
        *) die "usage: $0 up|down|build|status|engine" ;;
    esac
}

main "$@"
