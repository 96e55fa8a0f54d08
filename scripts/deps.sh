#!/usr/bin/env bash
# Installs the Debian packages maxgrad builds against, only those that are missing.
# Usage: scripts/deps.sh [extra packages...]
set -euo pipefail
need=(cmake g++ libopenblas-dev libtbb-dev libstb-dev doctest-dev "$@")
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
