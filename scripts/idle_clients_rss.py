#!/usr/bin/python3
"""Memory per connected client of a pooler: N logged-in clients held open, RSS before and with them.

For each target of the local bench stack (`pgsluice bench stack up`), this connects and closes a
few clients (warm-up), reads the pooler process's VmRSS (and Pss, /proc/PID/smaps_rollup), opens N clients through it (each logs in
and runs one query, then stays connected and idle), reads the figures again while all N are
connected, closes them, and prints (RSS_N - RSS_0) / N. Targets run one after the other, in
the same run, measured the same way. Start the poolers afresh before a run (`pgsluice bench
stack down` then `up`): memory a process kept from an earlier run lowers its figure.

    ulimit -n 20000
    scripts/idle_clients_rss.py -t pgbouncer,pgsluice -c 10000

The open-files limit of this process must allow N sockets (the script raises its soft limit
to the hard limit).
"""
import argparse
import concurrent.futures
import json
import os
import resource
import sys
import time

import psycopg2


def memory_kb(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                fields["rss"] = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    fields["pss"] = int(line.split()[1])
    except OSError:
        pass
    return fields


def settle(pid, seconds=1.0):
    """Waits until the process's RSS stops changing (at most a few seconds)."""
    last = memory_kb(pid)["rss"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = memory_kb(pid)["rss"]
        if now == last:
            break
        last = now
    return memory_kb(pid)


def open_client(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
    return conn


def measure(name, server, args):
    pid = server["process"]["pid"]
    dsn = (f"host=127.0.0.1 port={server['port']} dbname={args.dbname} user={args.user} "
           f"password={args.password} sslmode=disable gssencmode=disable connect_timeout=60")
    # Warm-up: the pool's server connections opened and the worker's caches filled, so that
    # RSS_0 is the pooler serving, not the pooler before its first client.
    with concurrent.futures.ThreadPoolExecutor(args.threads) as ex:
        for c in list(ex.map(lambda _: open_client(dsn), range(args.warmup))):
            c.close()
    before = settle(pid)
    conns, errors = [], 0
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.threads) as ex:
        futures = [ex.submit(open_client, dsn) for _ in range(args.clients)]
        for fu in futures:
            try:
                conns.append(fu.result())
            except Exception as e:  # counted, the first few shown
                errors += 1
                if errors <= 3:
                    print(f"{name}: {str(e).strip()}", file=sys.stderr)
    connect_s = time.monotonic() - started
    held = settle(pid)
    for c in conns:
        c.close()
    after = settle(pid)
    n = len(conns)
    row = {
        "target": name, "pid": pid, "clients": n, "errors": errors, "connect_s": round(connect_s, 1),
        "rss0_kb": before["rss"], "rssN_kb": held["rss"], "rss_after_kb": after["rss"],
        "rss_per_client_kib": round((held["rss"] - before["rss"]) / n, 2) if n else None,
    }
    if "pss" in before and "pss" in held:
        row["pss_per_client_kib"] = round((held["pss"] - before["pss"]) / n, 2) if n else None
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-t", "--targets", default="pgbouncer,pgsluice",
                   help="stack targets (stack.json), or PORT:PID for a pooler started by hand")
    p.add_argument("-c", "--clients", type=int, default=10000)
    p.add_argument("--threads", type=int, default=8, help="concurrent logins")
    p.add_argument("--warmup", type=int, default=50, help="clients connected and closed before RSS_0 is read")
    p.add_argument("--stack-dir", default=".pgsluice/stack")
    p.add_argument("--user", default="sluice_admin")
    p.add_argument("--password", default="admin-secret")
    p.add_argument("--dbname", default="sluice")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.clients + 100:
        sys.exit(f"open-files hard limit {hard} is too low for {args.clients} clients")
    with open(os.path.join(args.stack_dir, "stack.json")) as f:
        servers = json.load(f)["servers"]
    rows = []
    for name in args.targets.split(","):
        if ":" in name:  # PORT:PID, a pooler started by hand
            port, pid = name.split(":")
            servers[name] = {"port": int(port), "process": {"pid": int(pid)}}
        if name not in servers:
            sys.exit(f"no target {name!r} in {args.stack_dir}/stack.json")
        rows.append(measure(name, servers[name], args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'target':<12} {'clients':>7} {'errors':>6} {'RSS_0 KiB':>10} {'RSS_N KiB':>10} {'after KiB':>10} "
          f"{'RSS/client':>10} {'PSS/client':>10} {'connect s':>9}")
    for r in rows:
        print(f"{r['target']:<12} {r['clients']:>7} {r['errors']:>6} {r['rss0_kb']:>10} {r['rssN_kb']:>10} "
              f"{r['rss_after_kb']:>10} {r['rss_per_client_kib']:>10} {r.get('pss_per_client_kib', '-'):>10} "
              f"{r['connect_s']:>9}")


if __name__ == "__main__":
    main()
