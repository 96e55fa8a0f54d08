#!/usr/bin/env bash
# Installs the Debian packages maxgrad builds against, only those that are missing.
# Usage: scripts/deps.sh [extra packages...]
set -euo pipefail
need=(cmake g++ libopenblas-dev libtbb-dev libstb-dev libxxhash-dev doctest-dev "$@")
# Optional, and on a line of its own: Open MPI, for training over several processes
# (docs/distributed.md) and its test. Installed when it can be; when it cannot, everything else
# builds as before and that one test is skipped. MAXGRAD_NO_MPI=1 leaves it out.
optional=(libopenmpi-dev openmpi-bin)
[ "${MAXGRAD_NO_MPI:-0}" = 1 ] && optional=()

missing_of() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${need[@]}")
mapfile -t missing_optional < <(missing_of "${optional[@]}")
[ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ] && exit 0
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
  updated=1
fi
if [ ${#missing_optional[@]} -gt 0 ]; then
  echo "installing (optional): ${missing_optional[*]}"
  { [ "${updated:-0}" = 1 ] || $sudo_cmd apt-get update -qq; } &&
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" ||
    echo "scripts/deps.sh: could not install ${missing_optional[*]}; going on without MPI (one-process training only)" >&2
fi
exit 0
