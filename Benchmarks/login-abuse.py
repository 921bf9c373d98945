#!/usr/bin/env python3
"""Login abuse on loopback: how many password guesses an attacker gets at one account, whether the
real owner still gets in, and how long a real login takes during login floods.

    Benchmarks/login-abuse.py [--seconds N] [--server PATH] [--admin PATH] [--client PATH]

Starts a release chat-server with the default scrypt (ln=15, r=8, p=3) on 127.0.0.1, makes the
accounts with chat-admin, and runs each phase for a bounded time (default 60 s; the whole run
takes about 5 minutes). Attackers use source addresses 127.0.x.y, so "100 addresses" are 100
distinct addresses in several /24 networks. Prints one JSON line per phase and a summary table.
Written with Python's standard library only: it shares no code with chat-bench or the server.
"""
import argparse, asyncio, base64, json, os, random, shutil, signal, ssl, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 26811


def sasl_payload(account, password):
    return base64.b64encode(b"\0" + account.encode() + b"\0" + password.encode()).decode()


class Client:
    """One IRC-over-TLS connection that logs in with SASL PLAIN or EXTERNAL."""

    def __init__(self, ctx, source):
        self.ctx, self.source = ctx, source

    async def login(self, account, password=None, timeout=120, hang_up_after_payload=False):
        """Returns (outcome, seconds): outcome is 'ok', a FAIL code, or 'closed'."""
        start = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", PORT, ssl=self.ctx, server_hostname="localhost", local_addr=(self.source, 0)), timeout)
        except Exception as error:  # noqa: BLE001 - a refused connection is a result here
            return f"connect-failed:{type(error).__name__}", time.monotonic() - start
        mechanism = "PLAIN" if password is not None else "EXTERNAL"
        writer.write(f"CAP LS 302\r\nNICK {account}\r\nUSER {account} 0 * :x\r\nCAP REQ :sasl standard-replies\r\nAUTHENTICATE {mechanism}\r\n".encode())
        code = None
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), timeout)
                if not line:
                    return code or "closed", time.monotonic() - start
                parts = line.decode(errors="replace").rstrip("\r\n").split(" ")
                if parts[0].startswith(":"):
                    parts = parts[1:]
                command = parts[0]
                if command == "AUTHENTICATE" and parts[1:2] == ["+"]:
                    writer.write(f"AUTHENTICATE {sasl_payload(account, password) if password is not None else '+'}\r\n".encode())
                    await writer.drain()
                    if hang_up_after_payload:
                        return "hung-up", time.monotonic() - start
                elif command == "FAIL" and len(parts) > 2:
                    code = parts[2]
                elif command == "903":
                    writer.write(b"CAP END\r\n")
                elif command == "001":
                    return "ok", time.monotonic() - start
                elif command in ("904", "905", "906"):
                    return code or "INVALID_CREDENTIALS", time.monotonic() - start
                elif command == "ERROR":
                    return code or "closed", time.monotonic() - start
        except asyncio.TimeoutError:
            return "timeout", time.monotonic() - start
        finally:
            writer.close()


async def guesser(ctx, source, account, deadline, counts):
    """Guesses as fast as the server allows, waiting out every RATE_LIMITED answer."""
    client = Client(ctx, source)
    wait = 0.0
    while time.monotonic() + wait < deadline:
        await asyncio.sleep(wait)
        outcome, _ = await client.login(account, f"guess-{random.random()}")
        counts[outcome] = counts.get(outcome, 0) + 1
        wait = 0.5 if outcome in ("RATE_LIMITED", "SERVER_BUSY") else 0.0


async def phase_guessing(ctx, addresses, seconds, owner_ctx):
    """Guessing alice's password from `addresses` for `seconds`; the owner logs in meanwhile from
    her usual address and from a new one."""
    counts = {}
    deadline = time.monotonic() + seconds
    sources = [f"127.0.{2 + i // 50}.{1 + i % 50}" for i in range(addresses)]
    attack = [asyncio.create_task(guesser(ctx, s, "alice", deadline, counts)) for s in sources]
    await asyncio.sleep(seconds / 2)
    owner_known = await Client(owner_ctx, "127.0.1.10").login("alice", "alice's real password")
    owner_new = await Client(owner_ctx, "127.0.1.99").login("alice", "alice's real password")
    await asyncio.gather(*attack)
    checked = counts.get("INVALID_CREDENTIALS", 0)
    return {"phase": f"guessing from {addresses} address{'es' if addresses > 1 else ''}", "seconds": seconds,
            "guesses_checked": checked, "refused_unchecked": sum(v for k, v in counts.items() if k != "INVALID_CREDENTIALS"),
            "outcomes": counts, "owner_usual_address": owner_known[0], "owner_usual_seconds": round(owner_known[1], 3),
            "owner_new_address": owner_new[0], "owner_new_seconds": round(owner_new[1], 3)}


async def flood_hang_up(ctx, source, deadline, counts):
    client = Client(ctx, source)
    while time.monotonic() < deadline:
        outcome, _ = await client.login(f"nobody{random.randrange(10**9)}", "x", hang_up_after_payload=True)
        counts[outcome] = counts.get(outcome, 0) + 1


async def flood_unknown(ctx, source, deadline, counts):
    client = Client(ctx, source)
    while time.monotonic() < deadline:
        outcome, _ = await client.login(f"nobody{random.randrange(10**9)}", "x")
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome in ("RATE_LIMITED", "SERVER_BUSY"):
            await asyncio.sleep(0.2)


async def real_logins(ctx, seconds, cert_ctx=None):
    """bob logs in every 2 s during the flood from his usual address (and with his certificate);
    returns the outcomes and latencies."""
    results = []
    deadline = time.monotonic() + seconds
    await asyncio.sleep(2)  # the flood is under way
    while time.monotonic() < deadline - 2:
        outcome, took = await Client(ctx, "127.0.1.20").login("bob", "bob's real password")
        entry = {"password": [outcome, round(took, 3)]}
        if cert_ctx is not None:
            outcome, took = await Client(cert_ctx, "127.0.1.21").login("bob")
            entry["certificate"] = [outcome, round(took, 3)]
        results.append(entry)
        await asyncio.sleep(2)
    return results


def summarize_logins(results, key):
    values = [r[key] for r in results if key in r]
    ok = [t for outcome, t in values if outcome == "ok"]
    return {"logins": len(values), "ok": len(ok), "p50_s": round(sorted(ok)[len(ok) // 2], 3) if ok else None,
            "max_s": round(max(ok), 3) if ok else None, "others": sorted({o for o, _ in values if o != "ok"})}


async def phase_flood(ctx, cert_ctx, name, workers, seconds):
    counts = {}
    deadline = time.monotonic() + seconds
    tasks = [asyncio.create_task(w) for w in workers(deadline, counts)]
    results = await real_logins(ctx, seconds, cert_ctx)
    await asyncio.gather(*tasks)
    return {"phase": name, "seconds": seconds, "flood_outcomes": counts,
            "real_login_password": summarize_logins(results, "password"),
            "real_login_certificate": summarize_logins(results, "certificate")}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of each phase (10 to 600)")
    parser.add_argument("--server", default=os.path.join(ROOT, ".build/release/chat-server"))
    parser.add_argument("--admin", default=os.path.join(ROOT, ".build/release/chat-admin"))
    parser.add_argument("--client", default=os.path.join(ROOT, ".build/release/chat-client"))
    args = parser.parse_args()
    if not 10 <= args.seconds <= 600:
        sys.exit("login-abuse.py: --seconds must be from 10 to 600")
    for path in (args.server, args.admin, args.client):
        if not os.access(path, os.X_OK):
            sys.exit(f"login-abuse.py: {path} not found: run 'swift build -c release' first")
    work = tempfile.mkdtemp(prefix="securechat-abuse-")
    try:
        run([args.admin, "certs", "init", "--dir", f"{work}/certs"])
        with open(f"{work}/server.json", "w") as f:
            json.dump({"listeners": [{"host": "127.0.0.1", "port": PORT}],
                       "tls": {"certificateChain": f"{work}/certs/server.crt", "privateKey": f"{work}/certs/server.key"},
                       "usersFile": f"{work}/users.json",
                       "limits": {"maxClientsPerAddress": 100, "registrationTimeoutSeconds": 120}}, f)
        for name, password in (("alice", "alice's real password"), ("bob", "bob's real password")):
            run([args.admin, "adduser", name, "--config", f"{work}/server.json", "--password-stdin"], input=password + "\n")
        run([args.client, "cert", "init", "--dir", f"{work}/bob", "--name", "bob"])
        fingerprint = run([args.admin, "certs", "show", f"{work}/bob/client.crt"]).stdout.split("SHA-256:")[1].split()[0]
        run([args.admin, "cert", "add", "bob", fingerprint, "--config", f"{work}/server.json"])
        server = subprocess.Popen([args.server, "--config", f"{work}/server.json", "--log-level", "warning"],
                                  stderr=open(f"{work}/server.log", "w"))
        try:
            for _ in range(100):
                try:
                    socket_ok = await asyncio.open_connection("127.0.0.1", PORT)
                    socket_ok[1].close()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            ctx = ssl.create_default_context(cafile=f"{work}/certs/ca.crt")
            cert_ctx = ssl.create_default_context(cafile=f"{work}/certs/ca.crt")
            cert_ctx.load_cert_chain(f"{work}/bob/client.crt", f"{work}/bob/client.key")
            # The owners log in once from their usual addresses before anything happens.
            assert (await Client(ctx, "127.0.1.10").login("alice", "alice's real password"))[0] == "ok"
            assert (await Client(ctx, "127.0.1.20").login("bob", "bob's real password"))[0] == "ok"
            phases = [await phase_guessing(ctx, 1, args.seconds, ctx)]
            # A fresh server, so the second attack starts from zero failures.
            server.send_signal(signal.SIGTERM); server.wait(10)
            server = subprocess.Popen([args.server, "--config", f"{work}/server.json", "--log-level", "warning"],
                                      stderr=open(f"{work}/server.log", "a"))
            await asyncio.sleep(1.5)
            assert (await Client(ctx, "127.0.1.10").login("alice", "alice's real password"))[0] == "ok"
            assert (await Client(ctx, "127.0.1.20").login("bob", "bob's real password"))[0] == "ok"
            phases.append(await phase_guessing(ctx, 100, args.seconds, ctx))
            flood_seconds = max(10, args.seconds // 2)
            phases.append(await phase_flood(ctx, cert_ctx, "flood: 1 address x 20 connections, connect-authenticate-hang up",
                                            lambda d, c: [flood_hang_up(ctx, "127.0.9.9", d, c) for _ in range(20)], flood_seconds))
            phases.append(await phase_flood(ctx, cert_ctx, "flood: 80 addresses, logins for unknown accounts",
                                            lambda d, c: [flood_unknown(ctx, f"127.0.{20 + i // 40}.{1 + i % 40}", d, c) for i in range(80)], flood_seconds))
            phases.append(await phase_flood(ctx, cert_ctx, "no flood (baseline)", lambda d, c: [], flood_seconds))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(10)
        for p in phases:
            print(json.dumps(p))
        print()
        for p in phases:
            if "guesses_checked" in p:
                print(f"{p['phase']:<36} {p['guesses_checked']:>4} guesses checked in {p['seconds']} s "
                      f"({p['refused_unchecked']} refused unhashed); owner from usual address: {p['owner_usual_address']} "
                      f"in {p['owner_usual_seconds']} s; from a new address: {p['owner_new_address']}")
            else:
                pw, ce = p["real_login_password"], p["real_login_certificate"]
                print(f"{p['phase']:<70} password login: {pw['ok']}/{pw['logins']} ok, p50 {pw['p50_s']} s, max {pw['max_s']} s; "
                      f"certificate login: {ce['ok']}/{ce['logins']} ok, p50 {ce['p50_s']} s, max {ce['max_s']} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
