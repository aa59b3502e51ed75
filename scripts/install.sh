#!/usr/bin/env bash
# Installs everything pgsluice needs on Debian 12 (build, tests, bench); safe to run again.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev
  libboost1.81-dev libssl-dev libpq-dev libtomlplusplus-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev
  # servers the tests and the bench start
  postgresql-15 postgresql-client-15 postgresql-contrib postgresql-15-postgis-3
  pgbouncer pgpool2
  # bench failover: HAProxy in front of a primary and its standby
  haproxy
  # client drivers exercised through the proxy
  python3 python3-psycopg2 python3-psycopg python3-asyncpg
  default-jdk-headless libpostgresql-jdbc-java
  # process tools used by the harness
  util-linux procps iproute2 openssl
  # /metrics tests: a real Prometheus server and `promtool check metrics`
  prometheus
  # bench ui browser test (tests/ui/browser_test.js drives it headless)
  chromium
)

# Keep package installs from starting services on their default ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

$SUDO apt-get update -q
# Node.js: keep an existing install (it may come with its own npm); otherwise Debian's.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi
$SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"

# The test servers run as the postgres OS user; it must exist.
id postgres >/dev/null 2>&1 || { echo "install: the postgres OS user is missing after installing postgresql-15" >&2; exit 1; }

# --- drivers test (tests/integration/drivers_test.cpp): node-postgres from the npm registry,
# because Debian's node-pg conflicts with the installed Node.js. Reinstalled from the lock file
# only when node_modules is missing or older than package.json / package-lock.json.
node_driver_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/drivers/node"
node_installed="$node_driver_dir/node_modules/.package-lock.json"
if [ ! -f "$node_installed" ] || [ "$node_driver_dir/package-lock.json" -nt "$node_installed" ] \
   || [ "$node_driver_dir/package.json" -nt "$node_installed" ]; then
  (cd "$node_driver_dir" && npm ci --no-audit --no-fund)
fi
# --- end drivers test

# --- bench ui browser test (tests/integration/bench_ui_test.cpp): playwright-core from npm drives
# Debian's chromium (it downloads no browser of its own); reinstalled the same way as above.
ui_test_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/ui"
ui_installed="$ui_test_dir/node_modules/.package-lock.json"
if [ ! -f "$ui_installed" ] || [ "$ui_test_dir/package-lock.json" -nt "$ui_installed" ] \
   || [ "$ui_test_dir/package.json" -nt "$ui_installed" ]; then
  (cd "$ui_test_dir" && npm ci --no-audit --no-fund)
fi
# --- end bench ui browser test

echo "install: done"
