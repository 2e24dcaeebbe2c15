#!/bin/sh
# Render docker/nginx-stack.conf.template and run nginx in the foreground (as www-data; every
# file it writes is under /tmp). Settings:
#   SERVING_UPSTREAM     host:port of the serving app (default serving:8080)
#   RETRAIN_SERVE_TOKEN  when set, POST /predict needs "Authorization: Bearer <token>" (else 401);
#                        [A-Za-z0-9_-], at least 16 characters (what `make stack` generates)
# The upstream is looked up again through the network's DNS every 10 s, so a restarted serving
# container (a new address) is found without restarting nginx.
set -eu
SERVING_UPSTREAM="${SERVING_UPSTREAM:-serving:8080}"
RESOLVER="$(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf)"
case "$RESOLVER" in *:*) RESOLVER="[$RESOLVER]" ;; esac
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
# shellcheck disable=SC2090
export SERVING_UPSTREAM RESOLVER AUTH_CHECK
mkdir -p /tmp/nginx
# shellcheck disable=SC2016  # envsubst's list of the variables to replace, literally
envsubst '${SERVING_UPSTREAM} ${RESOLVER} ${AUTH_CHECK}' \
  </etc/retrain/nginx.conf.template >/tmp/nginx/nginx.conf
chmod 600 /tmp/nginx/nginx.conf
exec nginx -e stderr -p /tmp/nginx -c /tmp/nginx/nginx.conf -g 'daemon off;'
