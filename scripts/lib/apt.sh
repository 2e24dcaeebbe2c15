# Sourced by scripts/install-*.sh: root access and "install what is missing" from Debian's packages.

# root_prefix <who>: prints "" as root, "sudo" where sudo exists; fails (with why) otherwise.
root_prefix() {
  if [ "$(id -u)" = 0 ]; then echo ""; return 0; fi
  if command -v sudo >/dev/null 2>&1; then echo "sudo"; return 0; fi
  echo "$1: needs root (or sudo) to apt-get install" >&2
  return 1
}

# apt_install_missing <who> <package>=<a file it installs>...: apt-get installs the packages whose
# file is absent (none absent: nothing runs, not even apt-get update). Their services are not
# started: policy-rc.d denies it while installing (nginx would take port 80; the tests start
# their own servers on free ports), and the denial is removed again, on failure too.
apt_install_missing() (
  set -euo pipefail
  who="$1"; shift
  missing=()
  for pair in "$@"; do
    [ -e "${pair#*=}" ] || missing+=("${pair%%=*}")
  done
  [ ${#missing[@]} -gt 0 ] || exit 0
  sudo="$(root_prefix "$who")"
  echo "$who: installing ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
)
