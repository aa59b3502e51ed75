#!/usr/bin/env bash
# Runs the compose stacks' own scripts and configs on loopback without Docker, and checks that every user logs in through every front end.
#
# For machines without a Docker engine: it starts the primary the way the
# postgres image does on a first start (initdb, a socket-only server, then
# postgres/primary-init.sh), clones both replicas with
# postgres/replica-entrypoint.sh (with `gosu` and the image's entrypoint stood
# in for), then runs PgBouncer and Pgpool-II from the compose config files.
# Container host names become 127.0.0.1 and the fixed ports free ones; nothing
# else in the configs is changed. Everything lives in a temporary directory and
# every process started here is stopped on exit, also on failure.
#
# pgsluice runs from compose/pgsluice/pgsluice.toml with Prometheus from
# compose/prometheus/prometheus.yml scraping it; every series the Grafana
# dashboard (compose/grafana/dashboards/pgsluice.json) queries is checked
# against that live scrape.
# Needs PostgreSQL 15, pgbouncer, pgpool2 and prometheus installed
# (scripts/install.sh) and a built pgsluice ($PGSLUICE_BIN, else the newest
# build*/app/pgsluice).
# Run as root (servers then run as the postgres OS user) or as that user.
#   compose/check-without-docker.sh        exit status 0 when every login works
set -Eeuo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin=/usr/lib/postgresql/15/bin
os_user=postgres
work="$(mktemp -d /tmp/pgsluice-compose-check.XXXXXX)"

as_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$os_user" -- "$@"; else "$@"; fi
}

# Free loopback ports, taken all at once so they differ from each other.
read -r p_primary p_replica1 p_replica2 p_pgbouncer p_pgpool p_pgbouncer_pgpool p_pcp p_pgsluice p_metrics p_prometheus p_citus_pgsluice <<<"$(
  /usr/bin/python3 -c '
import socket
socks = [socket.socket() for _ in range(11)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"

# The server options every node gets in compose.yaml (x-postgres.command).
server_options="$(/usr/bin/python3 -c '
import sys, yaml
command = yaml.safe_load(open(sys.argv[1]))["x-postgres"]["command"]
assert command[0] == "postgres"
print(" ".join(command[1:]))' "$here/compose.yaml")"

cleanup() {
  local status=$?
  set +e
  for name in pgbouncer pgbouncer-pgpool pgsluice prometheus citus-pgsluice; do
    [ -s "$work/$name.pid" ] && kill "$(cat "$work/$name.pid")" 2>/dev/null
  done
  # Pgpool-II's pid file ends in a NUL byte. SIGINT: fast shutdown.
  [ -s "$work/pgpool/pgpool.pid" ] && kill -INT "$(tr -d '\0' <"$work/pgpool/pgpool.pid")" 2>/dev/null
  for node in replica2 replica1 primary; do
    [ -f "$work/$node/postmaster.pid" ] && as_user "$bin/pg_ctl" -D "$work/$node" -m fast -w stop >/dev/null
  done
  if [ "$status" = 0 ]; then rm -rf "$work"; else echo "check-without-docker: logs kept in $work" >&2; fi
}
trap cleanup EXIT

pgsluice_bin="${PGSLUICE_BIN:-$(ls -t "$here"/../build*/app/pgsluice 2>/dev/null | head -n 1)}"
[ -x "$pgsluice_bin" ] || { echo "check-without-docker: no pgsluice binary (build it, or set PGSLUICE_BIN)" >&2; exit 1; }
command -v prometheus >/dev/null || { echo "check-without-docker: prometheus is not installed (scripts/install.sh)" >&2; exit 1; }

mkdir -p "$work/sock" "$work/stubs" "$work/pgbouncer" "$work/pgbouncer-pgpool" "$work/pgpool" "$work/pgsluice" "$work/prometheus/data"
if [ "$(id -u)" = 0 ]; then chown -R "$os_user:$os_user" "$work"; fi

# --- primary: what the image's entrypoint does, then our init script -----------
printf 'admin-secret\n' >"$work/pw"
as_user "$bin/initdb" -D "$work/primary" --username=sluice_admin --pwfile="$work/pw" >"$work/initdb.log" 2>&1
printf '\nhost all all all scram-sha-256\n' >>"$work/primary/pg_hba.conf"
as_user "$bin/pg_ctl" -D "$work/primary" -w -l "$work/primary-init.log" \
  -o "$server_options -c listen_addresses='' -k $work/sock -p $p_primary" start >/dev/null
as_user env PGHOST="$work/sock" PGPORT="$p_primary" "$bin/psql" -q -v ON_ERROR_STOP=1 \
  -U sluice_admin -d postgres -c 'CREATE DATABASE sluice'
# Sourced, as the image's entrypoint does with a non-executable init script.
# shellcheck disable=SC2016 # "$0" is expanded by the inner shell
as_user env PGHOST="$work/sock" PGPORT="$p_primary" PATH="$bin:$PATH" PGDATA="$work/primary" \
  POSTGRES_USER=sluice_admin POSTGRES_DB=sluice \
  REPLICATION_USER=replicator REPLICATION_PASSWORD=replicator-secret \
  bash -c 'set -Eeo pipefail; . "$0"' "$here/postgres/primary-init.sh" >"$work/primary-init.out"
as_user "$bin/pg_ctl" -D "$work/primary" -m fast -w stop >/dev/null
as_user "$bin/pg_ctl" -D "$work/primary" -w -l "$work/primary.log" \
  -o "$server_options -c listen_addresses=127.0.0.1 -k $work/sock -p $p_primary" start >/dev/null

# --- replicas: our entrypoint, with stand-ins for gosu and the image's entrypoint
cat >"$work/stubs/gosu" <<'EOF'
#!/bin/sh
user="$1"; shift
exec runuser -u "$user" -- "$@"
EOF
printf '#!/bin/sh\nexit 0\n' >"$work/stubs/docker-entrypoint.sh"
chmod 0755 "$work/stubs/gosu" "$work/stubs/docker-entrypoint.sh"
for n in 1 2; do
  port_var="p_replica$n"
  env PATH="$work/stubs:$bin:$PATH" PGDATA="$work/replica$n" \
    PRIMARY_HOST=127.0.0.1 PRIMARY_PORT="$p_primary" \
    REPLICATION_USER=replicator REPLICATION_PASSWORD=replicator-secret REPLICA_NAME="replica$n" \
    bash "$here/postgres/replica-entrypoint.sh" postgres 2>"$work/replica$n-entrypoint.log"
  as_user "$bin/pg_ctl" -D "$work/replica$n" -w -l "$work/replica$n.log" \
    -o "$server_options -c listen_addresses=127.0.0.1 -k $work/sock -p ${!port_var}" start >/dev/null
done

# --- poolers: the compose configs, host names and ports swapped -----------------
sed -e "s/host=primary port=5432/host=127.0.0.1 port=$p_primary/" \
    -e "s/^listen_addr = 0.0.0.0/listen_addr = 127.0.0.1/" \
    -e "s/^listen_port = 6432/listen_port = $p_pgbouncer/" \
    -e "s|/etc/pgbouncer/|$work/pgbouncer/|" \
    "$here/pgbouncer/pgbouncer.ini" >"$work/pgbouncer/pgbouncer.ini"
cp "$here/pgbouncer/userlist.txt" "$work/pgbouncer/"
sed -e "s/host=pgpool port=9999/host=127.0.0.1 port=$p_pgpool/" \
    -e "s/^listen_addr = 0.0.0.0/listen_addr = 127.0.0.1/" \
    -e "s/^listen_port = 6432/listen_port = $p_pgbouncer_pgpool/" \
    -e "s|/etc/pgbouncer/|$work/pgbouncer-pgpool/|" \
    "$here/pgbouncer-pgpool/pgbouncer.ini" >"$work/pgbouncer-pgpool/pgbouncer.ini"
cp "$here/pgbouncer-pgpool/userlist.txt" "$work/pgbouncer-pgpool/"
sed -e "/^backend_hostname/s/'[a-z0-9]*'/'127.0.0.1'/" \
    -e "s/^backend_port0 = 5432/backend_port0 = $p_primary/" \
    -e "s/^backend_port1 = 5432/backend_port1 = $p_replica1/" \
    -e "s/^backend_port2 = 5432/backend_port2 = $p_replica2/" \
    -e "s/^listen_addresses = '\*'/listen_addresses = '127.0.0.1'/" \
    -e "s/^port = 9999/port = $p_pgpool/" \
    -e "s/^pcp_port = 9898/pcp_port = $p_pcp/" \
    -e "s|/var/run/pgpool|$work/pgpool|g; s|/var/log/pgpool|$work/pgpool|; s|/etc/pgpool2/|$work/pgpool/|" \
    "$here/pgpool/pgpool.conf" >"$work/pgpool/pgpool.conf"
cp "$here/pgpool/pool_passwd" "$here/pgpool/pcp.conf" "$here/pgpool/pool_hba.conf" "$work/pgpool/"
# pgsluice: its [listen] and [metrics] on loopback, the primary's host and port.
/usr/bin/python3 - "$here/pgsluice/pgsluice.toml" "$work/pgsluice/pgsluice.toml" "$p_primary" "$p_pgsluice" "$p_metrics" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = text.replace('host = "primary"\nport = 5432', 'host = "127.0.0.1"\nport = %s' % sys.argv[3])
text = re.sub(r'(\[listen\]\nhost = )"0.0.0.0"\nport = 6432', r'\1"127.0.0.1"\nport = %s' % sys.argv[4], text)
text = re.sub(r'(\[metrics\]\nhost = )"0.0.0.0"\nport = 9127', r'\1"127.0.0.1"\nport = %s' % sys.argv[5], text)
open(sys.argv[2], "w").write(text)
PY
sed -e "s/'pgsluice:9127'/'127.0.0.1:$p_metrics'/" "$here/prometheus/prometheus.yml" >"$work/prometheus/prometheus.yml"
if [ "$(id -u)" = 0 ]; then chown -R "$os_user:$os_user" "$work"; fi

start_bg() {  # name, command...: runs in the background, pid in $work/name.pid, output in $work/name.log
  local name="$1"; shift
  if [ "$(id -u)" = 0 ]; then set -- runuser -u "$os_user" -- "$@"; fi
  "$@" >"$work/$name.log" 2>&1 &
  echo $! >"$work/$name.pid"
}
start_bg pgbouncer /usr/sbin/pgbouncer "$work/pgbouncer/pgbouncer.ini"
start_bg pgbouncer-pgpool /usr/sbin/pgbouncer "$work/pgbouncer-pgpool/pgbouncer.ini"
start_bg pgpool /usr/sbin/pgpool -n -D -f "$work/pgpool/pgpool.conf" -F "$work/pgpool/pcp.conf" \
  -a "$work/pgpool/pool_hba.conf"
start_bg pgsluice "$pgsluice_bin" serve -c "$work/pgsluice/pgsluice.toml"
start_bg prometheus "$(command -v prometheus)" --config.file="$work/prometheus/prometheus.yml" \
  --web.listen-address="127.0.0.1:$p_prometheus" --storage.tsdb.path="$work/prometheus/data" --log.level=warn

# Ready when the compose health check passes: a real login and a query.
for port in "$p_pgbouncer" "$p_pgpool" "$p_pgbouncer_pgpool" "$p_pgsluice"; do
  for attempt in $(seq 1 60); do
    if PGPASSWORD=admin-secret "$bin/psql" -h 127.0.0.1 -p "$port" -U sluice_admin -d sluice \
        -Atqc 'SELECT 1' >/dev/null 2>&1; then break; fi
    if [ "$attempt" = 60 ]; then echo "check-without-docker: nothing answers on port $port" >&2; exit 1; fi
    sleep 0.5
  done
done

# --- checks -------------------------------------------------------------------------
passes=0
failures=0
check() {  # description, expected, actual
  if [ "$2" = "$3" ]; then
    echo "ok    $1"
    passes=$((passes + 1))
  else
    echo "FAIL  $1: expected '$2', got '$3'"
    failures=$((failures + 1))
  fi
}
for target in "primary:$p_primary" "replica1:$p_replica1" "replica2:$p_replica2" \
    "pgbouncer:$p_pgbouncer" "pgpool:$p_pgpool" "pgbouncer-pgpool:$p_pgbouncer_pgpool" "pgsluice:$p_pgsluice"; do
  for login in sluice_admin:admin-secret sluice_scram:scram-secret sluice_md5:md5-secret; do
    user="${login%%:*}"
    got="$(PGPASSWORD="${login#*:}" "$bin/psql" -h 127.0.0.1 -p "${target#*:}" -U "$user" -d sluice \
      -Atc 'SELECT current_user' 2>&1 || true)"
    check "${target%%:*}: $user logs in" "$user" "$got"
  done
  got="$(PGPASSWORD=wrong "$bin/psql" -h 127.0.0.1 -p "${target#*:}" -U sluice_scram -d sluice \
    -Atc 'SELECT 1' 2>&1 || true)"
  check "${target%%:*}: a wrong password is refused" "refused" "$(case "$got" in *authentication\ failed*) echo refused ;; *) echo "$got" ;; esac)"
done
admin() { PGPASSWORD=admin-secret "$bin/psql" -h 127.0.0.1 -p "$1" -U sluice_admin -d sluice -Atc "$2"; }
check "primary: both replicas stream under their own names" "replica1 streaming,replica2 streaming" \
  "$(admin "$p_primary" "SELECT string_agg(application_name || ' ' || state, ',' ORDER BY 1) FROM pg_stat_replication")"
check "pgpool: one primary and two streaming standbys, all up" \
  "up primary ,up standby streaming,up standby streaming" \
  "$(admin "$p_pgpool" "SHOW pool_nodes" | awk -F'|' '{ printf "%s%s %s %s", (NR > 1 ? "," : ""), $4, $7, $12 }')"

# --- Citus (compose/citus): pgsluice in front of the coordinator pair ------------------
# The coordinators run ../postgres/primary-init.sh and replica-entrypoint.sh like the
# primary and replica1 above, which stand in for them here (Citus itself is not packaged
# for Debian 12, so the workers and coordinator-init.sh are checked only for their
# shape). pgsluice runs compose/citus/pgsluice.toml with host names and ports swapped:
# it must find the primary by itself (role = "auto") and send writes there.
citus="$here/citus"
check "citus: compose.yaml has the coordinator pair, the workers and pgsluice" \
  "coordinator_primary coordinator_secondary pgsluice worker1 worker2" \
  "$(/usr/bin/python3 -c '
import sys, yaml
print(" ".join(sorted(yaml.safe_load(open(sys.argv[1]))["services"])))' "$citus/compose.yaml")"
check "citus: the files compose.yaml mounts exist" "" \
  "$(/usr/bin/python3 -c '
import os, sys, yaml
base = os.path.dirname(sys.argv[1])
for name, service in yaml.safe_load(open(sys.argv[1]))["services"].items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith(".") and not os.path.exists(os.path.join(base, source)):
            print(name + ": " + source)' "$citus/compose.yaml")"
check "citus: coordinator-init.sh parses" "ok" "$(bash -n "$citus/coordinator-init.sh" && echo ok)"
{
  mkdir -p "$work/citus-pgsluice"
  sed -e "s/host = \"coordinator_primary\", port = 5432/host = \"127.0.0.1\", port = $p_primary/g" \
      -e "s/host = \"coordinator_secondary\", port = 5432/host = \"127.0.0.1\", port = $p_replica1/g" \
      -e "s/^host = \"0.0.0.0\"/host = \"127.0.0.1\"/" \
      -e "s/^port = 6432/port = $p_citus_pgsluice/" \
      "$citus/pgsluice.toml" >"$work/citus-pgsluice/pgsluice.toml"
  if [ "$(id -u)" = 0 ]; then chown -R "$os_user:$os_user" "$work/citus-pgsluice"; fi
  got="$("$pgsluice_bin" check -c "$work/citus-pgsluice/pgsluice.toml" 2>&1 || true)"
  check "citus: pgsluice check accepts pgsluice.toml" "accepted" \
    "$(case "$got" in [Cc]onfig\ OK*) echo accepted ;; *) echo "$got" ;; esac)"
  start_bg citus-pgsluice "$pgsluice_bin" serve -c "$work/citus-pgsluice/pgsluice.toml"
  citus_sql() { PGPASSWORD="${2:-admin-secret}" "$bin/psql" -h 127.0.0.1 -p "$p_citus_pgsluice" -U "${3:-sluice_admin}" \
    -d sluice -Atc "$1" 2>&1; }
  got=""
  for attempt in $(seq 1 60); do
    got="$(citus_sql 'SELECT 1' || true)"
    if [ "$got" = 1 ]; then break; fi
    sleep 0.5
  done
  check "citus: pgsluice serves a login within 30 s" "1" "$got"
  for login in sluice_scram:scram-secret sluice_md5:md5-secret; do
    check "citus: ${login%%:*} logs in through pgsluice" "${login%%:*}" \
      "$(citus_sql 'SELECT current_user' "${login#*:}" "${login%%:*}" || true)"
  done
  # psql 15 prints every statement's result of a -c string: the last line is the SELECT's.
  check "citus: pgsluice sends a write to the coordinator primary" "f $p_primary" \
    "$(citus_sql 'CREATE TEMP TABLE t (i int); SELECT pg_is_in_recovery(), inet_server_port()' | tail -n 1 | tr '|' ' ' || true)"
}

# Prometheus scrapes pgsluice (polled until up, at most 60 s), and every series the dashboard
# queries is in pgsluice's scrape, or (series that appear with data only: replicas, routing)
# among the names proxy/scrape.cpp exports.
prom_query() {  # PromQL -> the first result's value, or nothing
  /usr/bin/python3 - "$p_prometheus" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
try:
    url = "http://127.0.0.1:%s/api/v1/query?query=%s" % (sys.argv[1], urllib.parse.quote(sys.argv[2]))
    result = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
    print(result[0]["value"][1] if result else "")
except Exception:
    print("")
PY
}
up=""
for attempt in $(seq 1 120); do
  up="$(prom_query 'up{job="pgsluice"}')"
  [ "$up" = 1 ] && break
  sleep 0.5
done
check "prometheus: scrapes pgsluice (up)" "1" "$up"
check "prometheus: pgsluice counted the logins above" "yes" \
  "$(v="$(prom_query 'pgsluice_clients_accepted_total{job="pgsluice"}')"; /usr/bin/python3 -c 'import sys; print("yes" if float(sys.argv[1] or 0) >= 4 else sys.argv[1])' "$v")"
missing="$(/usr/bin/python3 - "$here/grafana/dashboards/pgsluice.json" "$here/../proxy/scrape.cpp" "$p_metrics" <<'PY'
import json, re, sys, urllib.request
dashboard = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
names = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in re.findall(r"\b((?:pgsluice|process)_[a-z_]+)", e)}
scrape = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[3], timeout=5).read().decode()
live = set(re.findall(r"^# TYPE (\S+)", scrape, re.M))
source = open(sys.argv[2]).read()
print(" ".join(sorted(n for n in names if n not in live and '"%s"' % n not in source)))
PY
)"
check "grafana dashboard: every series it queries is exported" "" "$missing"

echo "$passes passed, $failures failed"
[ "$failures" = 0 ]
