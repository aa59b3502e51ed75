#!/usr/bin/env bash
# Runs the whole test suite from a clean clone: installs what is needed, builds, runs every test
# (unit, real-PostgreSQL integration, client drivers, fuzz smoke), then again under ASan+UBSan.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install.sh

jobs=$(nproc)
echo "== build (release with debug info)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs"

echo "== sanitizer build (address,undefined; libFuzzer targets with clang)"
CXX=clang++ cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DPGSLUICE_SANITIZE=address,undefined -DPGSLUICE_FUZZ=ON >/dev/null
# Only what the sanitized run executes: unit tests, fuzz targets, the hostile-input, session-state, routing, TLS, console and HA integration tests.
sanitize_targets=$(ninja -C build-sanitize -t targets all | sed -n 's/^\(unit_[a-z]*\|fuzz_[a-z_]*\|it_proxy_bad_input_test\|it_proxy_features_test\|it_proxy_session_state_test\|it_proxy_routing_test\|it_proxy_admin_test\|it_proxy_tls_test\|it_proxy_ha_test\|pgsluice\): .*/\1/p' | sort -u)
ninja -C build-sanitize -j"$jobs" $sanitize_targets
echo "== tests under the sanitizers"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-sanitize --output-on-failure --no-tests=error -j"$jobs" -L 'unit|fuzz|sanitize'
echo "== all tests passed"
