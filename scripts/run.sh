#!/usr/bin/env bash
# The main job from a fresh clone: install what is needed, build, then run the quick comparison
# of pgsluice against PostgreSQL direct, PgBouncer and Pgpool-II on a local cluster.
# Extra arguments are passed to `pgsluice bench quick` (e.g. --duration 10s).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$(nproc)" pgsluice
./build/app/pgsluice --help
exec ./build/app/pgsluice bench quick "$@"
