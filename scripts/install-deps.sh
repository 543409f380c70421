#!/usr/bin/env bash
# Installs the Debian packages esmd builds, tests and demos with. Idempotent: a package that is
# already installed is not fetched again.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libev-dev libcurl4-openssl-dev librdkafka-dev
      libcjson-dev libsqlite3-dev libcmocka-dev libmicrohttpd-dev libsystemd-dev sqlite3 kcat jq
      clang-format cppcheck docker-compose systemd curl python3 clang libclang-rt-14-dev valgrind)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
