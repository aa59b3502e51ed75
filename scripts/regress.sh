#!/usr/bin/env bash
# Runs PostgreSQL 15's own regression suite directly, through pgsluice in session and in
# transaction pooling (and optionally through PgBouncer) and reports the tests that fail only
# through a pooler, with the first lines of each of their diff hunks.
#
#   bash scripts/regress.sh [--strict] [--pgbouncer] [--modes direct,session,transaction]
#                           [--pool-size N] [--max-connections N] [--hunk-lines N]
#                           [--results DIR] [--keep] [--server-setting 'name = value' ...]
#
# The test sources (sql/, expected/, data/ and regress.c of src/test/regress) come from Debian's
# source package postgresql-15 (apt-get source, through a private deb-src list that leaves the
# system's apt configuration alone), cached under ./.pgsluice/regress/. Each mode runs on a fresh
# copy of one temporary cluster (initdb as the postgres OS user, a free loopback port, a temp
# dir), installcheck-style: database "regression" prepared as pg_regress prepares it, then
# pg_regress --use-existing with the source tree's parallel_schedule.
# Results (pg_regress output, regression.diffs, one diff per test, server and proxy logs, the
# summary) go to bench-results/regress-<time>/ unless --results says otherwise.
# Exit status: 0 when the suite ran, whatever it found; with --strict, 1 when a test fails
# through pgsluice but passes directly.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

strict=0
with_pgbouncer=0
modes="direct,session,transaction"
pool_size=4
max_connections=0
hunk_lines=6
max_hunks=8
results=""
keep=0
server_settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --strict) strict=1 ;;
    --pgbouncer) with_pgbouncer=1 ;;
    --modes) modes="$2"; shift ;;
    --modes=*) modes="${1#*=}" ;;
    --pool-size) pool_size="$2"; shift ;;
    --pool-size=*) pool_size="${1#*=}" ;;
    --max-connections) max_connections="$2"; shift ;;
    --max-connections=*) max_connections="${1#*=}" ;;
    --hunk-lines) hunk_lines="$2"; shift ;;
    --hunk-lines=*) hunk_lines="${1#*=}" ;;
    --results) results="$2"; shift ;;
    --results=*) results="${1#*=}" ;;
    --keep) keep=1 ;;
    # Extra postgresql.conf lines for every mode (diagnosis: e.g. "timezone = 'America/Los_Angeles'").
    --server-setting) server_settings+=("$2"); shift ;;
    --server-setting=*) server_settings+=("${1#*=}") ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "regress: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$with_pgbouncer" = 1 ] && [[ ",$modes," != *,pgbouncer,* ]]; then modes="$modes,pgbouncer"; fi
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  case "$m" in direct|session|transaction|pgbouncer) ;; *) echo "regress: unknown mode $m" >&2; exit 2 ;; esac
done
if [[ ",$modes," != *,direct,* ]]; then
  echo "regress: the direct run is the baseline; add direct to --modes" >&2; exit 2
fi

if [ "$(id -u)" -ne 0 ]; then echo "regress: run as root (servers run as the postgres OS user)" >&2; exit 2; fi

pgbin=/usr/lib/postgresql/15/bin
pg_regress=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
cache="$root/.pgsluice/regress"
mkdir -p "$cache"

log() { printf '== %s\n' "$*"; }

# --- packages: the server, its headers (to build regress.so), dpkg-source, PgBouncer ------------
need=()
for p in postgresql-15 postgresql-client-15 postgresql-server-dev-15 dpkg-dev gcc bzip2; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [[ ",$modes," == *,pgbouncer,* ]]; then
  dpkg-query -W -f '${Status}' pgbouncer 2>/dev/null | grep -q 'install ok installed' || need+=(pgbouncer)
fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" ||
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"; }
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
fi
[ -x "$pg_regress" ] || { echo "regress: $pg_regress is missing" >&2; exit 1; }
id postgres >/dev/null 2>&1 || { echo "regress: the postgres OS user is missing" >&2; exit 1; }

# --- pgsluice binary ----------------------------------------------------------------------------
find_pgsluice() {
  if [ -n "${PGSLUICE_BIN:-}" ]; then echo "$PGSLUICE_BIN"; return; fi
  local best="" f
  for f in build/app/pgsluice build/proxy/pgsluice build*/app/pgsluice build*/proxy/pgsluice; do
    [ -x "$f" ] || continue
    if [ -z "$best" ] || [ "$f" -nt "$best" ]; then best="$f"; fi
  done
  [ -n "$best" ] && echo "$root/$best"
}
pgsluice_bin=""
if [[ ",$modes," == *,session,* || ",$modes," == *,transaction,* ]]; then
  pgsluice_bin=$(find_pgsluice || true)
  if [ -z "$pgsluice_bin" ]; then
    log "no pgsluice binary found (PGSLUICE_BIN, build*/app/pgsluice, build*/proxy/pgsluice): building into build/"
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    ninja -C build pgsluice
    pgsluice_bin=$(find_pgsluice)
  fi
  [ -x "$pgsluice_bin" ] || { echo "regress: $pgsluice_bin is not executable" >&2; exit 1; }
fi

# --- the regression sources, from Debian's source package ---------------------------------------
# A private apt configuration: the deb-src twins of the system's Debian entries, its own lists.
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/sources.list.d"
{
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas of Debian's own archive (URIs ending in /debian or /debian-security).
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /URIs:[^\n]*\/debian(-security)?\/?([ \n]|$)/ && /Types:[^\n]*deb([ \n]|$)/ && !/Enabled: *no/ {
           sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
  done
} >"$apt_dir/sources.list.d/debian-src.sources.new"
{
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\(\[[^]]*\][[:space:]]\+\)\{0,1\}[a-z]\+:\/\/[^[:space:]]*\/debian\(-security\)\{0,1\}\/\{0,1\}[[:space:]].*\)$/deb-src \1/p' "$f"
  done
} >"$apt_dir/sources.list.new"
mv "$apt_dir/sources.list.d/debian-src.sources.new" "$apt_dir/sources.list.d/debian-src.sources"
mv "$apt_dir/sources.list.new" "$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
          -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Sandbox::User=root")

installed=$(dpkg-query -W -f '${Version}' postgresql-15)
src_dir=""
# Reuse the cached tree of the installed version without asking apt.
if [ -f "$cache/src/$installed/.complete" ]; then src_dir="$cache/src/$installed"; fi
if [ -z "$src_dir" ]; then
  log "fetching the source of postgresql-15 (installed: $installed) through apt"
  apt-get -q "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 || echo "regress: apt-get update reported errors (see $apt_dir/update.log)" >&2
  # The installed version first, then every other 15.x the archive offers, newest first.
  mapfile -t candidates < <( { echo "$installed"
      apt-cache "${apt_opts[@]}" showsrc postgresql-15 2>/dev/null | sed -n 's/^Version: //p' | sort -V -r
    } | awk '!seen[$0]++')
  for v in "${candidates[@]}"; do
    if [ -f "$cache/src/$v/.complete" ]; then src_dir="$cache/src/$v"; break; fi
    dl="$cache/download/$v"
    rm -rf "$dl"; mkdir -p "$dl"
    if (cd "$dl" && apt-get -q "${apt_opts[@]}" source --download-only "postgresql-15=$v" >"$dl/apt.log" 2>&1); then
      orig=$(ls "$dl"/postgresql-15_*.orig.tar.* | head -1)
      tmp="$cache/src/$v.tmp"
      rm -rf "$tmp"; mkdir -p "$tmp"
      tar -xf "$orig" -C "$tmp" --strip-components=4 --wildcards '*/src/test/regress/*'
      touch "$tmp/.complete"
      rm -rf "$cache/src/$v"; mv "$tmp" "$cache/src/$v"
      rm -f "$dl"/*.orig.tar.*
      src_dir="$cache/src/$v"
      break
    fi
    echo "regress: postgresql-15 $v is not downloadable here ($(grep -m1 -o '[0-9]\{3\} [A-Za-z ]*' "$dl/apt.log" || echo 'see '"$dl/apt.log"))" >&2
  done
  [ -n "$src_dir" ] || { echo "regress: no postgresql-15 source package could be downloaded" >&2; exit 1; }
fi
src_version=$(basename "$src_dir")
if [ "$src_version" != "$installed" ]; then
  echo "regress: tests of postgresql-15 $src_version against server $installed (the exact version's source is not in the archive reachable here); the direct run is the baseline either way" >&2
fi

# regress.so (test_setup, create_view, misc, conversion) built against the installed server;
# autoinc.so and refint.so (triggers) are the server's own, looked up in the same --dlpath.
lib="$cache/lib/$src_version-$installed"
if [ ! -f "$lib/regress.so" ] || [ "$src_dir/regress.c" -nt "$lib/regress.so" ]; then
  log "building regress.so"
  mkdir -p "$lib"
  # shellcheck disable=SC2046
  gcc $("$pgbin/pg_config" --cflags) $("$pgbin/pg_config" --cflags_sl) -shared \
    -I"$("$pgbin/pg_config" --includedir-server)" "$src_dir/regress.c" -o "$lib/regress.so.tmp" -w
  mv "$lib/regress.so.tmp" "$lib/regress.so"
fi
pkglibdir=$("$pgbin/pg_config" --pkglibdir)
for so in autoinc.so refint.so; do ln -sfn "$pkglibdir/$so" "$lib/$so"; done

# --- temporary cluster ---------------------------------------------------------------------------
work=$(mktemp -d /tmp/pgsluice-regress.XXXXXX)
chown postgres: "$work"
chmod 755 "$work"
started_pids=()
running_data=""
cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ -n "$running_data" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$running_data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ "$keep" = 1 ]; then echo "regress: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

# Inputs copied where the server (COPY FROM data/...) and pg_regress (running as postgres) read them.
cp -a "$src_dir" "$work/regress"
cp -a "$lib" "$work/lib"
chown -R postgres: "$work/regress" "$work/lib"

log "initdb (template cluster)"
runuser -u postgres -- "$pgbin/initdb" -D "$work/template" -A trust -E UTF8 --locale=C -U postgres >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log" >&2; exit 1; }
cat >>"$work/template/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
for line in "${server_settings[@]}"; do printf '%s\n' "$line" >>"$work/template/postgresql.conf"; done

if [ -z "$results" ]; then results="$root/bench-results/regress-$(date +%Y%m%d-%H%M%S)"; fi
mkdir -p "$results"
results=$(cd "$results" && pwd)

pg_port=$(free_port)

start_server() {  # $1 = mode
  local data="$work/data-$1"
  rm -rf "$data"
  cp -a "$work/template" "$data"
  runuser -u postgres -- bash -c "ulimit -n 20000 2>/dev/null; exec '$pgbin/pg_ctl' -D '$data' -l '$work/server-$1.log' -w -t 60 -o '-p $pg_port' start" >/dev/null
  running_data="$data"
  # The database as pg_regress creates it (pg_regress.c, create_database).
  runuser -u postgres -- "$pgbin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
CREATE DATABASE "regression" TEMPLATE=template0;
ALTER DATABASE "regression" SET lc_messages TO 'C';
ALTER DATABASE "regression" SET lc_monetary TO 'C';
ALTER DATABASE "regression" SET lc_numeric TO 'C';
ALTER DATABASE "regression" SET lc_time TO 'C';
ALTER DATABASE "regression" SET bytea_output TO 'hex';
ALTER DATABASE "regression" SET timezone_abbreviations TO 'Default';
EOF
}
stop_server() {  # $1 = mode
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/data-$1" -m fast -w stop >/dev/null 2>&1 || true
  running_data=""
  cp "$work/server-$1.log" "$results/$1/server.log" 2>/dev/null || true
  rm -rf "$work/data-$1"
}

wait_port() {  # $1 = port, $2 = pid
  for _ in $(seq 100); do
    if ! kill -0 "$2" 2>/dev/null; then return 1; fi
    if "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres; then return 0; fi
    sleep 0.1
  done
  return 1
}

start_pgsluice() {  # $1 = pool mode; sets target_port
  local mode=$1 port cfg="$work/pgsluice-$1.toml"
  port=$(free_port)
  cat >"$cfg" <<EOF
# pgsluice in front of the regression cluster ($mode pooling).
pool_mode = "$mode"
default_pool_size = $pool_size
max_client_conn = 500
auth_type = "trust"

[listen]
host = "127.0.0.1"
port = $port

[log]
level = "info"

[databases."*"]
host = "127.0.0.1"
port = $pg_port
EOF
  cp "$cfg" "$results/$mode/pgsluice.toml"
  "$pgsluice_bin" check -c "$cfg" >"$results/$mode/pgsluice-check.log" 2>&1 ||
    { cat "$results/$mode/pgsluice-check.log" >&2; echo "regress: pgsluice refused its config" >&2; return 1; }
  (ulimit -n 20000 2>/dev/null; exec "$pgsluice_bin" serve -c "$cfg") >"$results/$mode/pgsluice.log" 2>&1 &
  local pid=$!
  started_pids+=("$pid")
  wait_port "$port" "$pid" || { tail -20 "$results/$mode/pgsluice.log" >&2; echo "regress: pgsluice did not start" >&2; return 1; }
  proxy_pid=$pid
  target_port=$port
}

start_pgbouncer() {  # sets target_port
  local port dir="$work/pgbouncer"
  port=$(free_port)
  mkdir -p "$dir"
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = 500
auth_type = trust
auth_file = $dir/userlist.txt
auth_user = postgres
auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename=\$1
; PgBouncer 1.18 cannot pass options=-c ... (pg_regress sets intervalstyle that way).
ignore_startup_parameters = options,extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
  chown -R postgres: "$dir"
  cp "$dir/pgbouncer.ini" "$results/pgbouncer/pgbouncer.ini"
  # setpriv execs (runuser would stay in between as the parent): $! is PgBouncer itself.
  (ulimit -n 20000 2>/dev/null; exec setpriv --reuid=postgres --regid=postgres --init-groups \
     /usr/sbin/pgbouncer "$dir/pgbouncer.ini") >"$results/pgbouncer/pgbouncer.out" 2>&1 &
  local pid=$!
  started_pids+=("$pid")
  wait_port "$port" "$pid" || { cat "$results/pgbouncer/pgbouncer.out" "$dir/pgbouncer.log" >&2 2>/dev/null; echo "regress: pgbouncer did not start" >&2; return 1; }
  proxy_pid=$pid
  target_port=$port
}

stop_proxy() {
  local pid=$1 i
  kill -INT "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep_pids=()
  for i in "${started_pids[@]}"; do [ "$i" = "$pid" ] || keep_pids+=("$i"); done
  started_pids=("${keep_pids[@]}")
}

run_suite() {  # $1 = mode
  local mode=$1 out="$work/out-$1" start end rc=0
  mkdir -p "$results/$mode"
  rm -rf "$out"; mkdir -p "$out"; chown postgres: "$out"
  start_server "$mode"
  target_port=$pg_port proxy_pid=""
  case "$mode" in
    session|transaction) start_pgsluice "$mode" ;;
    pgbouncer) start_pgbouncer ;;
  esac
  local extra=()
  if [ "$max_connections" -gt 0 ]; then extra+=("--max-connections=$max_connections"); fi
  log "$mode: pg_regress on port $target_port"
  start=$(date +%s)
  runuser -u postgres -- env -u PGOPTIONS -u PGTZ -u PGDATESTYLE "$pg_regress" \
      --inputdir="$work/regress" --outputdir="$out" \
      --bindir="$pgbin" --dlpath="$work/lib" --schedule="$work/regress/parallel_schedule" \
      --max-concurrent-tests=20 "${extra[@]}" \
      --host=127.0.0.1 --port="$target_port" --user=postgres --use-existing --dbname=regression \
      >"$results/$mode/pg_regress.out" 2>&1 || rc=$?
  end=$(date +%s)
  echo $((end - start)) >"$results/$mode/seconds"
  if [ -n "$proxy_pid" ]; then stop_proxy "$proxy_pid"; fi
  if [ "$mode" = pgbouncer ]; then cp "$work/pgbouncer/pgbouncer.log" "$results/$mode/" 2>/dev/null || true; fi
  stop_server "$mode"
  cp "$out/regression.diffs" "$results/$mode/" 2>/dev/null || : >"$results/$mode/regression.diffs"
  cp "$out/regression.out" "$results/$mode/" 2>/dev/null || true
  rm -rf "$results/$mode/results"; cp -a "$out/results" "$results/$mode/results" 2>/dev/null || true
  # Per-test status: "name ok|FAILED|ignored".
  sed -n 's/^\(test\|    \) \{1,\}\([A-Za-z0-9_.-]\{1,\}\) \{1,\}\.\.\. \(ok\|FAILED\|failed (ignored)\).*/\2 \3/p' \
    "$results/$mode/pg_regress.out" | sed 's/failed (ignored)/ignored/' >"$results/$mode/status"
  # One diff file per test.
  mkdir -p "$results/$mode/diffs"
  awk -v dir="$results/$mode/diffs" '
    /^diff / { if (f) close(f); n = $NF; sub(/.*\//, "", n); sub(/\.out$/, "", n); f = dir "/" n ".diff" }
    f { print > f }' "$results/$mode/regression.diffs"
  echo "   $mode: $(grep -c ' ok$' "$results/$mode/status" || true) ok, $(grep -vc ' ok$' "$results/$mode/status" || true) failed, $((end - start)) s (pg_regress exit $rc)"
}

log "PostgreSQL $installed, tests of $src_version, pgsluice ${pgsluice_bin:-(not used)}, results in $results"
for m in "${mode_list[@]}"; do run_suite "$m"; done

# --- report ------------------------------------------------------------------------------------
summary="$results/summary.txt"
regressions=0
{
  echo "PostgreSQL regression suite through poolers"
  echo "server $installed, tests from source $src_version, pgsluice: ${pgsluice_bin:-none}, pool size $pool_size"
  for line in "${server_settings[@]}"; do echo "server setting: $line"; done
  echo
  printf '%-12s %6s %6s %7s %8s  %s\n' mode tests passed failed seconds "fail here but pass directly"
  for m in "${mode_list[@]}"; do
    total=$(wc -l <"$results/$m/status")
    passed=$(grep -c ' ok$' "$results/$m/status" || true)
    failed=$((total - passed))
    if [ "$m" = direct ]; then
      newfail="-"
    else
      newfail=$(awk 'NR == FNR { if ($2 == "ok") ok[$1] = 1; next } $2 != "ok" && ok[$1] { n++ } END { print n + 0 }' \
        "$results/direct/status" "$results/$m/status")
    fi
    printf '%-12s %6s %6s %7s %8s  %s\n' "$m" "$total" "$passed" "$failed" "$(cat "$results/$m/seconds")" "$newfail"
  done
  direct_failed=$(awk '$2 != "ok" { printf "%s ", $1 }' "$results/direct/status")
  echo
  echo "failing directly (baseline): ${direct_failed:-none}"
  for m in "${mode_list[@]}"; do
    [ "$m" = direct ] && continue
    list=$(awk 'NR == FNR { if ($2 == "ok") ok[$1] = 1; next } $2 != "ok" && ok[$1] { print $1 }' \
      "$results/direct/status" "$results/$m/status")
    missing=$(awk 'NR == FNR { seen[$1] = 1; next } !seen[$1] { printf "%s ", $1 }' "$results/$m/status" "$results/direct/status")
    echo
    echo "=== $m: fail through it but pass directly: $(echo $list | wc -w)"
    [ -n "$missing" ] && echo "    not run (pg_regress stopped early?): $missing"
    [ -n "$list" ] && echo "    $(echo $list)"
    if [[ "$m" == session || "$m" == transaction ]] && [ -n "$list" ]; then regressions=1; fi
    # Tests failing both ways: their output through the pooler against the direct run's.
    both=$(awk 'NR == FNR { if ($2 != "ok") bad[$1] = 1; next } $2 != "ok" && bad[$1] { print $1 }' \
      "$results/direct/status" "$results/$m/status")
    differ=""
    mkdir -p "$results/$m/diffs-vs-direct"
    for t in $both; do
      if ! diff -U3 "$results/direct/results/$t.out" "$results/$m/results/$t.out" >"$results/$m/diffs-vs-direct/$t.diff" 2>&1; then
        differ="$differ $t"
      else
        rm -f "$results/$m/diffs-vs-direct/$t.diff"
      fi
    done
    if [ -n "$both" ]; then
      echo "    failing directly too: $(echo $both); output differs from the direct run's: ${differ:- none}"
      [ -n "$differ" ] && echo "    (diffs against the direct output in $results/$m/diffs-vs-direct/)"
    fi
    for t in $list; do
      d="$results/$m/diffs/$t.diff"
      echo
      echo "--- $m / $t  ($d)"
      [ -f "$d" ] || { echo "    (no diff: the test process failed; see $results/$m/pg_regress.out)"; continue; }
      awk -v lines="$hunk_lines" -v maxh="$max_hunks" '
        /^@@/ { h++; if (h <= maxh) { print "    " $0; left = lines } ; next }
        /^(diff|---|\+\+\+) / { next }
        left > 0 && h <= maxh { print "    " $0; left-- }
        END { if (h > maxh) printf "    ... %d more hunks\n", h - maxh }' "$d"
    done
  done
} | tee "$summary"
echo
echo "regress: results in $results (summary.txt, <mode>/regression.diffs, <mode>/diffs/<test>.diff)"
if [ "$strict" = 1 ] && [ "$regressions" = 1 ]; then exit 1; fi
exit 0
