#!/usr/bin/env bash
# Build a minimal Debian + Python base image offline (no image registry needed) and import it
# into the local container engine, for machines where `python:3.11-slim` cannot be pulled.
#
#   docker/build-base.sh [IMAGE]        default IMAGE: localhost/debian-python:bookworm
#
# debootstrap fetches .deb packages from the Debian mirror apt already uses; the result (~275 MB)
# has python3 + venv + CA certificates. Idempotent: an existing IMAGE is kept unless FORCE=1.
set -euo pipefail

IMAGE="${1:-localhost/debian-python:bookworm}"
SUITE="${SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-}"  # DEBIAN_SECURITY_MIRROR too (default deb.debian.org)

engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker
  else echo "build-base: no container engine (podman, or docker with a daemon)" >&2; exit 1; fi
fi

if [ "${FORCE:-0}" != 1 ] && $engine image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-base: $IMAGE already present"; exit 0
fi
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || {
  echo "build-base: debootstrap missing (run scripts/install-podman.sh)" >&2; exit 1; }

if [ -z "$MIRROR" ]; then
  # the mirror apt is configured with (deb822 or classic sources), else Debian's CDN
  MIRROR=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources \
             /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -1 || true)
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
fi

root=$(mktemp -d /tmp/debian-python.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build-base: debootstrap $SUITE from $MIRROR"
/usr/sbin/debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# apt in images built FROM this base (PostgreSQL, Redis, nginx, git) gets Debian's fixes too
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
  "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}" \
  "$SUITE" >"$root/etc/apt/sources.list"
# slim it like the official slim images: no apt lists, docs, man pages or locales
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {} + 2>/dev/null || true
tar -C "$root" -c . | $engine import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "build-base: imported $IMAGE ($($engine image inspect --format '{{.Size}}' "$IMAGE") bytes)"
