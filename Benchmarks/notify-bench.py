#!/usr/bin/python3
"""NOTIFY carrying whole messages against NOTIFY carrying a reference to the stored row.

    Benchmarks/notify-bench.py [--messages N] [--listeners L] [--bytes B]

Issue 18 asks which of the two a cluster should use (NOTIFY's payload limit is 8,000 bytes). On
a throwaway PostgreSQL (initdb in a temporary folder as the postgres user, a free loopback port,
stopped at the end), for each way and each batch size:
  - a publisher stores N messages of B bytes, a transaction per BATCH messages, and notifies;
  - L listeners (the other nodes) each get every message: `whole` from the notification itself,
    `reference` by reading the rows the notification names (seq > the last one read);
  - reported: PostgreSQL's CPU per message (its postmaster and every process it started, from
    /proc), and the seconds until every listener had every message.
Needs postgresql and python3-psycopg2 (Debian). Loopback only; bounded in messages and time.
"""
import argparse, json, os, select, shutil, socket, subprocess, tempfile, threading, time

import psycopg2
import psycopg2.extensions


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(args):
    return (["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []) + args


def pg_cpu(root):
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(name) == root or int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def listen(dsn, way, count, done, deadline):
    """One listener: until it has `count` messages (whole, or read by reference)."""
    conn = psycopg2.connect(dsn)
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    cur = conn.cursor()
    cur.execute("LISTEN bench")
    got, last = 0, 0
    ready = threading.Event()
    done.append(ready)
    while got < count and time.monotonic() < deadline:
        if select.select([conn], [], [], 1) == ([], [], []):
            continue
        conn.poll()
        numbers = []
        while conn.notifies:
            note = conn.notifies.pop(0)
            if way == "whole":
                got += 1
            else:
                numbers.append(int(note.payload))
        if numbers and max(numbers) > last:
            cur.execute("SELECT seq, payload FROM bench_events WHERE seq > %s AND seq <= %s ORDER BY seq", (last, max(numbers)))
            rows = cur.fetchall()
            got += len(rows)
            last = max(numbers)
    ready.set()
    conn.close()


def run(dsn, postmaster, way, messages, listeners, size, batch):
    setup = psycopg2.connect(dsn)
    setup.autocommit = True
    setup.cursor().execute("TRUNCATE bench_events RESTART IDENTITY")
    done = []
    deadline = time.monotonic() + 300
    threads = [threading.Thread(target=listen, args=(dsn, way, messages, done, deadline)) for _ in range(listeners)]
    for t in threads:
        t.start()
    time.sleep(1)  # the listeners are listening
    body = "x" * size
    publisher = psycopg2.connect(dsn)
    cur = publisher.cursor()
    cpu_before, start = pg_cpu(postmaster), time.monotonic()
    for first in range(0, messages, batch):
        for _ in range(min(batch, messages - first)):
            if way == "whole":
                cur.execute("WITH e AS (INSERT INTO bench_events (payload) VALUES (%s) RETURNING seq) "
                            "SELECT pg_notify('bench', seq || ' ' || %s) FROM e", (body, body))
            else:
                cur.execute("WITH e AS (INSERT INTO bench_events (payload) VALUES (%s) RETURNING seq) "
                            "SELECT pg_notify('bench', seq::text) FROM e", (body,))
        publisher.commit()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    cpu = pg_cpu(postmaster) - cpu_before
    publisher.close()
    setup.close()
    return {"way": way, "messages": messages, "listeners": listeners, "bytes": size, "batch": batch,
            "postgres_us_per_message": round(cpu * 1e6 / messages, 1), "seconds": round(seconds, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--listeners", type=int, default=2)
    parser.add_argument("--bytes", type=int, default=300, help="a message's size (an IRC line with tags)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    bin_folder = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
    pgbin = f"/usr/lib/postgresql/{bin_folder}/bin"
    folder = tempfile.mkdtemp(prefix="securechat-notify-")
    os.chmod(folder, 0o777)
    port = free_port()
    data = os.path.join(folder, "data")
    try:
        subprocess.run(as_postgres([f"{pgbin}/initdb", "-D", data, "-U", "bench", "--auth=trust", "--no-sync"]), check=True, capture_output=True)
        subprocess.run(as_postgres([f"{pgbin}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w", "-t", "60",
                                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"]), check=True, capture_output=True)
        postmaster = int(open(os.path.join(data, "postmaster.pid")).readline())
        dsn = f"host=127.0.0.1 port={port} user=bench dbname=postgres"
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        conn.cursor().execute("CREATE TABLE bench_events (seq bigserial PRIMARY KEY, created timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)")
        conn.close()
        for _ in range(args.rounds):
            for batch in (1, 100):
                for way in ("whole", "reference"):
                    print(json.dumps(run(dsn, postmaster, way, args.messages, args.listeners, args.bytes, batch)), flush=True)
    finally:
        subprocess.run(as_postgres([f"{pgbin}/pg_ctl", "-D", data, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
