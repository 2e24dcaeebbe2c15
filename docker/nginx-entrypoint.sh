#!/bin/sh
# Render docker/nginx-stack.conf.template and run nginx in the foreground (as www-data; every
# file it writes is under /tmp). Settings:
#   SERVING_UPSTREAM     host:port of the serving replicas (default serving:8080): every IPv4
#                        address the host name has on the compose network is one upstream server
#   RETRAIN_SERVE_TOKEN  when set, POST /predict needs "Authorization: Bearer <token>" (else 401);
#                        [A-Za-z0-9_-], at least 16 characters (what `make stack` generates)
#   RETRAIN_FEEDBACK_TOKEN  the same for POST /feedback (outcomes); unset: RETRAIN_SERVE_TOKEN's
# Every 5 s the name is looked up again and each address asked for /ready (200: a model is
# loaded): the upstream is the ready replicas (all of them while none is ready, e.g. before the
# first champion, so /health and /version still answer). When that set changes (a replica
# started, restarted, died, or is loading a model), the configuration is rendered again and
# nginx reloaded gracefully (requests in flight finish on the old workers). Between two looks,
# nginx's passive checks take a failing replica out (max_fails=1 fail_timeout=5s).
set -eu
SERVING_UPSTREAM="${SERVING_UPSTREAM:-serving:8080}"
host="${SERVING_UPSTREAM%:*}"
port="${SERVING_UPSTREAM##*:}"
conf=/tmp/nginx/nginx.conf
token="${RETRAIN_SERVE_TOKEN:-}"
if [ -z "$token" ]; then
  AUTH_CHECK="# no RETRAIN_SERVE_TOKEN: /predict is open"
  echo "nginx-entrypoint: RETRAIN_SERVE_TOKEN not set: POST /predict needs no token" >&2
else
  if ! printf '%s' "$token" | grep -Eq '^[A-Za-z0-9_-]{16,}$'; then
    echo "nginx-entrypoint: RETRAIN_SERVE_TOKEN must be 16+ characters of [A-Za-z0-9_-]" >&2
    exit 1
  fi
  # shellcheck disable=SC2089,SC2090  # the quotes are nginx's, written into its config
  AUTH_CHECK="if (\$http_authorization != \"Bearer $token\") { return 401; }"
fi
feedback_token="${RETRAIN_FEEDBACK_TOKEN:-$token}"
if [ -z "$feedback_token" ]; then
  FEEDBACK_CHECK="# no RETRAIN_FEEDBACK_TOKEN nor RETRAIN_SERVE_TOKEN: /feedback is open"
else
  if ! printf '%s' "$feedback_token" | grep -Eq '^[A-Za-z0-9_-]{16,}$'; then
    echo "nginx-entrypoint: RETRAIN_FEEDBACK_TOKEN must be 16+ characters of [A-Za-z0-9_-]" >&2
    exit 1
  fi
  # shellcheck disable=SC2089,SC2090
  FEEDBACK_CHECK="if (\$http_authorization != \"Bearer $feedback_token\") { return 401; }"
fi

addresses() {  # the name's IPv4 addresses that are ready (all of them if none is), sorted
  all="$(getent ahostsv4 "$host" | awk '{print $1}' | sort -u)" || return 1
  ready=""
  for a in $all; do
    if curl -fsS -o /dev/null -m 2 "http://$a:$port/ready" 2>/dev/null; then
      ready="$ready$a
"
    fi
  done
  if [ -n "$ready" ]; then printf '%s' "$ready"; else printf '%s\n' "$all"; fi
}

render() {  # render <addresses>: the configuration for them, tested, then moved in place
  SERVERS="$(printf '%s\n' "$1" \
    | awk -v p="$port" 'NF {printf "        server %s:%s max_fails=1 fail_timeout=5s;\n", $1, p}')"
  # shellcheck disable=SC2090
  export SERVERS AUTH_CHECK FEEDBACK_CHECK
  # shellcheck disable=SC2016  # envsubst's list of the variables to replace, literally
  envsubst '${SERVERS} ${AUTH_CHECK} ${FEEDBACK_CHECK}' </etc/retrain/nginx.conf.template >"$conf.new"
  chmod 600 "$conf.new"
  nginx -t -q -e stderr -p /tmp/nginx -c "$conf.new" && mv "$conf.new" "$conf"
}

mkdir -p /tmp/nginx
waited=0
until now="$(addresses)" && [ -n "$now" ]; do  # the replicas start first; wait for one address
  waited=$((waited + 1))
  if [ "$waited" -ge 120 ]; then
    echo "nginx-entrypoint: $host has no address after 120 s" >&2
    exit 1
  fi
  sleep 1
done
render "$now"
echo "nginx-entrypoint: $(printf '%s\n' "$now" | wc -l) replica(s) of $host: $(echo $now)" >&2

# the watcher: a child of nginx once nginx replaces this shell (nginx reaps it)
(
  last="$now"
  while sleep 5; do
    now="$(addresses)" || continue
    if [ -n "$now" ] && [ "$now" != "$last" ] && render "$now"; then
      nginx -e stderr -p /tmp/nginx -c "$conf" -s reload \
        && echo "nginx-entrypoint: replicas now $(echo $now)" >&2 && last="$now"
    fi
  done
) &
exec nginx -e stderr -p /tmp/nginx -c "$conf" -g 'daemon off;'
