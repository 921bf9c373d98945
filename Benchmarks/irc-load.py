#!/usr/bin/env python3
"""A second load generator for IRC servers over TLS, sharing no code with chat-bench.

Written in Python (standard library only: asyncio, ssl, multiprocessing) so that every headline
figure in BENCHMARKS.md is confirmed by two tools with nothing in common but the protocol.

    irc-load.py fanout  --port P --ca CA --server-pid PID [--no-login] --members 100 --senders 10 --rate 1000
    irc-load.py fanout  ... --saturate
    irc-load.py connect --port P --ca CA --server-pid PID [--no-login] --clients 500
    irc-load.py idle    --port P --ca CA --server-pid PID [--no-login] --clients 2000
    irc-load.py history --port P --ca CA --server-pid PID --room '#history-bench' --requests 2000

fanout: MEMBERS clients in one room; SENDERS of them (in this process) send PRIVMSGs carrying
their send time (CLOCK_MONOTONIC, shared by every process on the machine), paced at RATE in
total or as fast as the server takes them (--saturate: each sender writes whenever its socket
accepts more). The other members are spread over --procs receiver processes. Reports deliveries
per second, latency percentiles, lost messages, and the server's CPU (utime + stime from
/proc/PID/stat) per delivery over the whole window, drain included.
connect: CLIENTS full TLS handshakes + registration (SASL PLAIN unless --no-login) up to 001,
--inflight at a time; the server's CPU per connection.
idle: CLIENTS registered clients in rooms of --room-size held open; the server's VmRSS before
and after, KiB per connection.
history: REQUESTS CHATHISTORY requests in ROOM, one at a time, alternating LATEST * and BEFORE a
random time of the last --span-days, --per-client per connection (the server allows a burst of 20
per client); latency from sending to the end of the batch, and messages per answer.

Each client connects from its own loopback source address (127.a.b.c), as real users would come
from many addresses. Talks to loopback only. Prints one JSON line per run.
"""
import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import re
import socket
import ssl
import sys
import time

ROOM = "#irc-load"
MARK = re.compile(rb"PRIVMSG " + ROOM.encode() + rb" :L (\d+) ")


def source_address(i):
    """A different 127.x.y.z for each client (a different /24 for consecutive clients)."""
    return f"127.{1 + i % 250}.{(i // 250) % 250}.{1 + (i // 62500) % 250}"


def cpu_seconds(pid):
    """CPU seconds of `pid` and of every --also-pid (a cluster's other nodes)."""
    total = 0.0
    for p in [pid] + ALSO_PIDS:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


ALSO_PIDS = []


def machine_cpu_seconds():
    """Busy CPU time of the whole machine (every process, interrupts and softirqs) from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


class Client(asyncio.Protocol):
    """One IRC connection: registers, joins, then counts (and times) relayed messages."""

    def __init__(self, nick, args):
        self.nick, self.args = nick, args
        self.buffer = b""
        self.waiters = []  # (predicate, future)
        self.transport = None
        self.counting = False
        self.timing = True
        self.received = 0
        self.history_lines = 0
        self.rooms = set()  # end of NAMES seen (a server may rejoin an account's rooms at login)
        self.latencies = []
        self.closed = asyncio.get_running_loop().create_future()
        # IRC over WebSocket (--websocket): frames in, masked frames out, after an HTTP upgrade.
        self.websocket = getattr(args, "websocket", False)
        self.raw = b""
        self.ws_open = False
        self.ws_ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)
        for _, future in self.waiters:
            if not future.done():
                future.set_exception(ConnectionError(f"{self.nick}: connection closed ({exc})"))

    def send(self, text):
        if self.websocket:
            self.transport.write(ws_frame(text.encode()))
        else:
            self.transport.write(text.encode() + b"\r\n")

    def unframe(self, data):
        """The IRC lines (CR LF ended) in the WebSocket frames received so far."""
        self.raw += data
        if not self.ws_open:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return b""
            head, self.raw = self.raw[:end], self.raw[end + 4:]
            if not head.startswith(b"HTTP/1.1 101"):
                self.ws_ready.set_exception(RuntimeError(f"{self.nick}: WebSocket upgrade refused: {head[:80]!r}"))
                self.transport.close()
                return b""
            self.ws_open = True
            self.ws_ready.set_result(True)
        lines, self.raw = split_frames(self.raw)
        return lines

    def count_frames(self, data):
        """Counting over WebSocket, without a Python step per frame (that cost more CPU than the
        server spends per delivery, so the tool, not the server, set the pace). The frames here are
        the bench's own lines: short text frames of ASCII, so every 0x81 byte starts a frame and
        the last one shows where the complete frames end; anything else takes the exact path."""
        raw = self.raw + data
        last = raw.rfind(b"\x81")
        if last < 0 or last + 1 == len(raw):
            self.raw = raw
            return
        end = last + 2 + raw[last + 1]
        if raw[last + 1] >= 126 or end < len(raw):  # a long frame, or another opcode after the last
            self.raw = b""
            lines, self.raw = split_frames(raw)
            self.count_lines(lines)
            return
        cut = end if end == len(raw) else last
        complete, self.raw = raw[:cut], raw[cut:]
        self.count_lines(complete, framed=True)

    def count_lines(self, chunk, framed=False):
        """Counts (and times) the marked messages of complete lines or frames, answers PINGs."""
        now = time.monotonic_ns()
        if self.timing:
            stamps = MARK.findall(chunk)
            self.received += len(stamps)
            self.latencies.extend(now - int(s) for s in stamps)
        else:
            self.received += chunk.count(b" :L ")
        if b"PING" in chunk:
            for line in (split_frames(chunk)[0] if framed else chunk).split(b"\r\n"):
                if line.startswith(b"PING"):
                    self.send("PONG" + line[4:].decode())

    def data_received(self, data):
        if self.websocket:
            if self.counting and self.ws_open:
                self.count_frames(data)
                return
            data = self.unframe(data)
            if not data:
                return
        if self.counting:
            # Hot path: only complete lines are counted; the rest waits for the next chunk.
            data = self.buffer + data
            cut = data.rfind(b"\n") + 1
            self.buffer = data[cut:]
            self.count_lines(data[:cut])
            return
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.line(line.rstrip(b"\r").decode("utf-8", "replace"))

    def line(self, line):
        if line.startswith("@"):
            line = line.split(" ", 1)[1] if " " in line else ""
        words = line.split(" ")
        if len(words) > 1 and words[1] in ("PRIVMSG", "NOTICE"):
            self.history_lines += 1
        elif len(words) > 3 and words[1] == "366":
            self.rooms.add(words[3].lower())
        if words[0] == "PING":
            self.send("PONG " + " ".join(words[1:]))
            return
        for entry in list(self.waiters):
            predicate, future = entry
            if not future.done() and predicate(words, line):
                future.set_result(line)
                self.waiters.remove(entry)

    def expect(self, predicate):
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        return future

    async def register(self):
        if self.args.login:
            sasl_ack = self.expect(lambda w, l: len(w) > 3 and w[1] == "CAP" and w[3] == "ACK")
            self.send("CAP REQ :" + " ".join(["sasl"] + self.args.caps))
            self.send(f"NICK {self.nick}")
            self.send(f"USER {self.nick} 0 * :{self.nick}")
            await sasl_ack
            plus = self.expect(lambda w, l: w[:2] == ["AUTHENTICATE", "+"])
            self.send("AUTHENTICATE PLAIN")
            await plus
            done = self.expect(lambda w, l: len(w) > 1 and w[1] in ("903", "904", "905", "906", "907"))
            token = base64.b64encode(f"\0{self.nick}\0{self.args.password}".encode()).decode()
            self.send("AUTHENTICATE " + token)
            answer = await done
            if " 903 " not in answer:
                raise RuntimeError(f"{self.nick}: SASL failed: {answer}")
            welcome = self.expect(lambda w, l: len(w) > 1 and w[1] == "001")
            self.send("CAP END")
        else:
            welcome = self.expect(lambda w, l: len(w) > 1 and w[1] == "001")
            self.send(f"NICK {self.nick}")
            self.send(f"USER {self.nick} 0 * :{self.nick}")
        await welcome

    async def join(self, room):
        if room.lower() in self.rooms:
            return  # already in it: the server ignores another JOIN
        end = self.expect(lambda w, l: len(w) > 3 and w[1] == "366" and w[3].lower() == room.lower())
        self.send(f"JOIN {room}")
        await end


def ws_frame(payload):
    """A masked text frame, as a browser sends."""
    n = len(payload)
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    key = (mask * (n // 4 + 1))[:n]
    return header + mask + (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def split_frames(raw):
    """The IRC lines (CR LF ended) in the complete frames at the start of raw, and the rest."""
    i, out = 0, []
    while len(raw) - i >= 2:
        length, offset = raw[i + 1] & 0x7F, i + 2
        if length == 126:
            if len(raw) - i < 4:
                break
            length, offset = int.from_bytes(raw[i + 2:i + 4], "big"), i + 4
        elif length == 127:
            if len(raw) - i < 10:
                break
            length, offset = int.from_bytes(raw[i + 2:i + 10], "big"), i + 10
        if len(raw) < offset + length:
            break
        if raw[i] & 0x0F in (1, 2):
            out.append(raw[offset:offset + length])
            out.append(b"\r\n")
        i = offset + length
    return b"".join(out), raw[i:]


def tls_context(args):
    context = ssl.create_default_context(cafile=args.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def connect(index, args, context, room=None):
    loop = asyncio.get_running_loop()
    nick = f"{args.account_prefix}{index}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source_address(index), 0))
    # Receivers (every member after the senders) may use another node of a cluster.
    if args.nodes:
        port = args.nodes[index % len(args.nodes)]
    else:
        port = args.receiver_port if args.receiver_port and index >= args.senders else args.port
    await loop.sock_connect(sock, (args.host, port))
    _, client = await loop.create_connection(lambda: Client(nick, args), sock=sock, ssl=context,
                                              server_hostname=args.server_name, ssl_handshake_timeout=120)
    if client.websocket:
        key = base64.b64encode(os.urandom(16)).decode()
        client.transport.write((f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: text.ircv3.net\r\n"
                                f"Origin: https://localhost:{port}\r\n\r\n").encode())
        await asyncio.wait_for(client.ws_ready, 120)
    await asyncio.wait_for(client.register(), 120)
    if room:
        await asyncio.wait_for(client.join(room), 120)
    return client


async def connect_many(args, indices, inflight, room_for=None):
    context = tls_context(args)
    semaphore = asyncio.Semaphore(inflight)
    failures = []

    async def one(i):
        async with semaphore:
            try:
                return await connect(i, args, context, room_for(i) if room_for else None)
            except Exception as error:  # noqa: BLE001 - reported, not hidden
                failures.append(f"{args.account_prefix}{i}: {error!r}")
                return None
    clients = await asyncio.gather(*(one(i) for i in indices))
    return [c for c in clients if c], failures


# ---- fanout ------------------------------------------------------------------------------

def receiver_process(args, indices, pipe):
    """Connects its share of the room, reports ready, counts until told to stop, reports."""
    async def main():
        clients, failures = await connect_many(args, indices, 50, lambda i: ROOM)
        # Latency is taken from every receiver's lines when few deliveries are expected, from one
        # in four at high rates (the counts are always complete).
        for n, client in enumerate(clients):
            client.counting = True
            client.timing = args.timing_every <= 1 or n % args.timing_every == 0
        pipe.send(("ready", len(clients), failures[:3]))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "go"
        for client in clients:
            client.received = 0
            client.latencies = []
        pipe.send("counting")  # the senders start only now: nothing counted is reset
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "report"
        # Lines may still be in this process's sockets: count until nothing moves for 0.5 s.
        last = -1
        while sum(c.received for c in clients) != last:
            last = sum(c.received for c in clients)
            await asyncio.sleep(0.5)
        latencies = [x for c in clients for x in c.latencies]
        pipe.send(("done", sum(c.received for c in clients), latencies,
                   sum(1 for c in clients if c.closed.done())))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "close"
        for c in clients:
            c.transport.close()
    asyncio.run(main())


async def fanout(args):
    receivers = list(range(args.senders, args.members))
    shares = [receivers[k::args.procs] for k in range(args.procs)]
    pipes, processes = [], []
    for share in shares:
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.Process(target=receiver_process, args=(args, share, child), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    loop = asyncio.get_running_loop()
    failures = []
    for pipe in pipes:
        _, count, errors = await loop.run_in_executor(None, pipe.recv)
        failures += errors
    senders, errors = await connect_many(args, range(args.senders), 50, lambda i: ROOM)
    failures += errors
    if failures:
        raise SystemExit(f"setup failed: {failures[0]}")
    for client in senders:
        client.counting = True
    await asyncio.sleep(1)  # every JOIN seen by everyone before counting starts
    for pipe in pipes:
        pipe.send("go")
    for pipe in pipes:
        await loop.run_in_executor(None, pipe.recv)  # "counting"
    for client in senders:
        client.received = 0
        client.latencies = []
    sent = [0] * len(senders)
    cpu_before, machine_before = cpu_seconds(args.server_pid), machine_cpu_seconds()
    start = time.monotonic()
    end = start + args.duration

    async def paced(k, client):
        interval = len(senders) / args.rate
        next_time = start + k * interval / len(senders)
        while True:
            now = time.monotonic()
            if now >= end or client.closed.done():
                return
            if next_time > now:
                await asyncio.sleep(next_time - now)
            client.send(f"PRIVMSG {ROOM} :L {time.monotonic_ns()} {sent[k]}")
            sent[k] += 1
            next_time += interval

    async def saturate(k, client):
        # Write whenever the transport's buffer drains below its low-water mark: the server
        # takes as fast as it can read; TCP flow control does the rest.
        transport = client.transport
        transport.set_write_buffer_limits(high=16384, low=4096)
        while time.monotonic() < end and not client.closed.done():
            if transport.get_write_buffer_size() > 16384:
                await asyncio.sleep(0.0005)
                continue
            if client.websocket:
                transport.write(b"".join(ws_frame(f"PRIVMSG {ROOM} :L {time.monotonic_ns()} {sent[k] + n}".encode()) for n in range(8)))
            else:
                batch = "".join(f"PRIVMSG {ROOM} :L {time.monotonic_ns()} {sent[k] + n}\r\n" for n in range(8))
                transport.write(batch.encode())
            sent[k] += 8
            await asyncio.sleep(0)

    await asyncio.gather(*((saturate if args.saturate else paced)(k, c) for k, c in enumerate(senders)))
    send_seconds = time.monotonic() - start
    total_sent = sum(sent)
    expected = total_sent * (args.members - 1)

    # Drain: until every expected delivery arrived or nothing moved for a second (at most
    # --drain-limit seconds: a cluster drains a saturated run's backlog more slowly).
    def local_received():
        return sum(c.received for c in senders)
    # Receivers report only at the end; poll the senders' share and the server's CPU to see motion.
    last_cpu, still = cpu_seconds(args.server_pid), 0
    for _ in range(int(args.drain_limit * 2)):
        await asyncio.sleep(0.5)
        cpu = cpu_seconds(args.server_pid)
        still = still + 1 if cpu - last_cpu < 0.02 else 0
        last_cpu = cpu
        if still >= 2:
            break
    cpu_after, machine_after = cpu_seconds(args.server_pid), machine_cpu_seconds()
    window = time.monotonic() - start
    for pipe in pipes:
        pipe.send("report")
    received, latencies, disconnects = local_received(), [x for c in senders for x in c.latencies], 0
    disconnects += sum(1 for c in senders if c.closed.done())
    for pipe in pipes:
        _, count, values, closed = await loop.run_in_executor(None, pipe.recv)
        received += count
        latencies += values
        disconnects += closed
    for pipe in pipes:
        pipe.send("close")
    for process in processes:
        process.join(timeout=10)
    for c in senders:
        c.transport.close()
    latencies.sort()
    ms = lambda ns: round(ns / 1e6, 2)  # noqa: E731
    server_cpu = cpu_after - cpu_before
    return {
        "mode": "saturate" if args.saturate else "paced", "members": args.members, "senders": args.senders,
        "rate": "max" if args.saturate else args.rate, "sent": total_sent,
        "sent_per_second": round(total_sent / send_seconds, 1), "delivered": received,
        # Over the whole window, drain included: saturating senders build a backlog in the server.
        "delivered_per_second": round(received / window), "lost": max(0, expected - received),
        "surplus": max(0, received - expected),  # counted twice: would show a miscount
        "disconnects": disconnects, "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(latencies[-1] if latencies else 0), "window_s": round(window, 2),
        "server_cpu_s": round(server_cpu, 3),
        "server_us_per_delivery": round(server_cpu * 1e6 / max(1, received), 3),
        "machine_cpu_s": round(machine_after - machine_before, 3),
        "machine_us_per_delivery": round((machine_after - machine_before) * 1e6 / max(1, received), 3),
    }


# ---- connect and idle ----------------------------------------------------------------------

async def connect_scenario(args):
    cpu_before = cpu_seconds(args.server_pid)
    start = time.monotonic()
    clients, failures = await connect_many(args, range(args.first, args.first + args.clients), args.inflight)
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(args.server_pid) - cpu_before
    for c in clients:
        c.transport.close()
    if failures:
        print(f"first failure: {failures[0]}", file=sys.stderr)
    return {"clients": args.clients, "completed": len(clients), "failed": len(failures),
            "per_second": round(len(clients) / elapsed, 1), "server_cpu_s": round(cpu, 3),
            "server_ms_per_connection": round(cpu * 1000 / max(1, len(clients)), 3)}


async def idle_scenario(args):
    before = resident_kib(args.server_pid)
    clients, failures = await connect_many(args, range(args.first, args.first + args.clients), args.inflight,
                                           lambda i: f"#idle{i // args.room_size}")
    await asyncio.sleep(args.settle)
    after = resident_kib(args.server_pid)
    for c in clients:
        c.transport.close()
    if failures:
        print(f"first failure: {failures[0]}", file=sys.stderr)
    return {"clients": args.clients, "held": len(clients), "failed": len(failures), "rss_before_kib": before,
            "rss_after_kib": after, "kib_per_connection": round((after - before) / max(1, len(clients)), 2)}


async def history_scenario(args):
    import random
    from datetime import datetime, timezone
    latencies, kinds, counts, failures = [], [], [], []
    now = time.time()
    done = 0
    for c in range((args.requests + args.per_client - 1) // args.per_client):
        client = await connect(c, args, tls_context(args), args.room)
        for _ in range(min(args.per_client, args.requests - done)):
            latest = done % 2 == 0
            if latest:
                request = f"CHATHISTORY LATEST {args.room} * {args.limit}"
            else:
                t = datetime.fromtimestamp(now - random.uniform(0, args.span_days * 86400), timezone.utc)
                request = f"CHATHISTORY BEFORE {args.room} timestamp={t.strftime('%Y-%m-%dT%H:%M:%S.')}{t.microsecond // 1000:03d}Z {args.limit}"
            end = client.expect(lambda w, l: (len(w) > 2 and w[1] == "BATCH" and w[2].startswith("-")) or (len(w) > 1 and w[1] == "FAIL"))
            client.history_lines = 0
            start = time.monotonic_ns()
            client.send(request)
            answer = await asyncio.wait_for(end, 60)
            latencies.append(time.monotonic_ns() - start)
            kinds.append(latest)
            if " FAIL " in f" {answer} ":
                failures.append(answer)
            else:
                counts.append(client.history_lines)
            done += 1
        client.transport.close()
    if failures:
        print(f"first failure: {failures[0]}", file=sys.stderr)
    ms = lambda values, p: round(percentile(sorted(values), p) / 1e6, 2)
    return {"requests": done, "failed": len(failures), "messages_per_answer": round(sum(counts) / max(1, len(counts)), 1),
            "p50_ms": ms(latencies, 50), "p99_ms": ms(latencies, 99), "max_ms": round(max(latencies) / 1e6, 2),
            "latest_p99_ms": ms([l for l, k in zip(latencies, kinds) if k], 99),
            "before_p99_ms": ms([l for l, k in zip(latencies, kinds) if not k], 99)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["fanout", "connect", "idle", "history"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="the server's port (required unless --nodes)")
    parser.add_argument("--ca", required=True, help="the server's CA certificate (PEM)")
    parser.add_argument("--server-name", default="localhost", help="name to verify in the certificate")
    parser.add_argument("--server-pid", type=int, required=True, help="for /proc/PID/stat and status")
    parser.add_argument("--no-login", dest="login", action="store_false", help="NICK/USER only (servers without accounts)")
    parser.add_argument("--account-prefix", default="bench")
    parser.add_argument("--password", default="bench-password")
    parser.add_argument("--label", default="server")
    parser.add_argument("--websocket", action="store_true", help="IRC over WebSocket on the same port (SecureChat's web transport)")
    parser.add_argument("--drain-limit", type=float, default=60,
                        help="seconds to wait at most, after sending, for the backlog to arrive (what has not is counted lost)")
    parser.add_argument("--also-pid", type=int, action="append", default=[], help="another server process whose CPU counts with the server's (a cluster's nodes)")
    parser.add_argument("--receiver-port", type=int, help="members that do not send connect here (a second node of a cluster)")
    parser.add_argument("--nodes", type=lambda text: [int(p) for p in text.split(",")],
                        help="a cluster's nodes as PORT,PORT,...: members (senders included) connect to them in turn")
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000, help="messages per second from all senders (paced)")
    parser.add_argument("--saturate", action="store_true")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--procs", type=int, default=2, help="receiver processes (fanout)")
    parser.add_argument("--timing-every", type=int, default=1, help="time the lines of one receiver in N (fanout)")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--first", type=int, default=0, help="first account number (connect, idle)")
    parser.add_argument("--inflight", type=int, default=50)
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--settle", type=float, default=2)
    parser.add_argument("--room", default="#history-bench", help="the room whose history is read (history)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument("--limit", type=int, default=100, help="messages per request (history)")
    parser.add_argument("--span-days", type=float, default=30)
    args = parser.parse_args()
    if args.port is None:
        if not args.nodes:
            parser.error("--port is required (or --nodes PORT,PORT,... for a cluster)")
        args.port = args.nodes[0]
    if not (args.host.startswith("127.") or args.host in ("::1", "localhost")):
        parser.error(f"irc-load.py talks only to loopback, not {args.host}")
    try:
        os.kill(args.server_pid, 0)
    except OSError:
        parser.error(f"no process {args.server_pid}: pass the server's PID with --server-pid")
    ALSO_PIDS.extend(args.also_pid)
    # history asks for batches of tagged messages.
    args.caps = ["batch", "server-time", "message-tags", "draft/chathistory"] if args.scenario == "history" else []
    run = {"fanout": fanout, "connect": connect_scenario, "idle": idle_scenario, "history": history_scenario}[args.scenario]
    result = asyncio.run(run(args))
    print(json.dumps({"tool": "irc-load.py", "scenario": args.scenario, "server": args.label, **result}), flush=True)


if __name__ == "__main__":
    main()
