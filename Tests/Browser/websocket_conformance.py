#!/usr/bin/env python3
"""IRC over WebSocket against a running chat-server, with the `websockets` library from PyPI (a
WebSocket implementation that shares no code with the server) and, for a frame no library will
send, a few raw bytes over TLS.

Usage: websocket_conformance.py --port PORT --ca CA.crt --account NAME:PASSWORD
Checks: subprotocol negotiation, text and binary frames, one IRC line per message, fragmentation,
ping/pong, an oversize message (closed with 1009), a text frame that is not UTF-8 (1007), and a
missing or foreign Origin (refused with 403). Exit status 0 when every check passed.
"""

import argparse
import asyncio
import base64
import os
import socket
import ssl
import sys

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

WAIT = 45
failures = []


def check(condition, text):
    print(("ok: " if condition else "FAILED: ") + text, flush=True)
    if not condition:
        failures.append(text)


async def lines_until(ws, predicate):
    async with asyncio.timeout(WAIT):
        while True:
            message = await ws.recv()
            line = message.decode() if isinstance(message, bytes) else message
            if predicate(line):
                return message


async def login(ws, account, password):
    await ws.send("CAP LS 302")
    await ws.send(f"NICK {account}")
    await ws.send(f"USER {account} 0 * :conformance")
    await ws.send("CAP REQ :sasl")
    await lines_until(ws, lambda l: " CAP " in l and " ACK " in l)
    await ws.send("AUTHENTICATE PLAIN")
    await lines_until(ws, lambda l: l.startswith("AUTHENTICATE"))
    await ws.send("AUTHENTICATE " + base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode())
    await lines_until(ws, lambda l: " 903 " in l)
    await ws.send("CAP END")
    return await lines_until(ws, lambda l: " 001 " in l)


def raw_invalid_utf8(port, ca, origin):
    """A masked text frame holding bytes that are not UTF-8; returns the close code received."""
    context = ssl.create_default_context(cafile=ca)
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=WAIT), server_hostname="localhost") as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: text.ircv3.net\r\n"
                   f"Origin: {origin}\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, data = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        payload = b"PING \xc3\x28"
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while True:
            while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
                chunk = s.recv(4096)
                if not chunk:
                    return None
                data += chunk
            opcode, length = data[0] & 0x0F, data[1] & 0x7F
            frame, data = data[2:2 + length], data[2 + length:]
            if opcode == 8:
                return int.from_bytes(frame[:2], "big")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--account", required=True)
    args = parser.parse_args()
    account, password = args.account.split(":", 1)
    url = f"wss://localhost:{args.port}/"
    origin = f"https://localhost:{args.port}"
    context = ssl.create_default_context(cafile=args.ca)

    # Subprotocols: text when offered (even second), binary when only it is offered.
    async with websockets.connect(url, ssl=context, origin=origin, subprotocols=["binary.ircv3.net", "text.ircv3.net"]) as ws:
        check(ws.subprotocol == "text.ircv3.net", f"text.ircv3.net chosen from both: {ws.subprotocol}")
        welcome = await login(ws, account, password)
        check(isinstance(welcome, str) and not welcome.endswith("\r\n"), "text frames, one line each, without CR LF")
        await ws.send("JOIN #conformance")
        await lines_until(ws, lambda l: " 366 " in l)

        # A message in three fragments is one line.
        await ws.send(["PRIVMSG #confo", "rmance :in ", "fragments"])
        await ws.send("PING :after-fragments")
        reply = await lines_until(ws, lambda l: "PONG" in l)
        check("after-fragments" in reply, "a fragmented message is taken as one line, the next line after it")

        # WebSocket ping and pong.
        pong = await ws.ping(b"conformance")
        async with asyncio.timeout(WAIT):
            latency = await pong
        check(latency >= 0, "a ping is answered with a pong")

        # A line over the IRC limit: 417, the connection lives.
        await ws.send("PRIVMSG #conformance :" + "x" * 700)
        check(" 417 " in await lines_until(ws, lambda l: " 417 " in l), "an overlong line gets 417")
        # A message far past any line: closed with 1009.
        await ws.send("PRIVMSG #conformance :" + "y" * 40000)
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    await ws.recv()
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            check(code == 1009, f"an oversize message closes with 1009: {code}")

    async with websockets.connect(url, ssl=context, origin=origin, subprotocols=["binary.ircv3.net"]) as ws:
        check(ws.subprotocol == "binary.ircv3.net", "binary.ircv3.net when only it is offered")
        await ws.send(b"CAP LS 302")
        message = await lines_until(ws, lambda l: " CAP " in l)
        check(isinstance(message, bytes), "binary frames from the server in binary mode")

    code = await asyncio.to_thread(raw_invalid_utf8, args.port, args.ca, origin)
    check(code == 1007, f"a text frame that is not UTF-8 closes with 1007: {code}")

    for label, headers in [("a foreign Origin", "https://evil.example"), ("no Origin", None)]:
        try:
            async with websockets.connect(url, ssl=context, origin=headers, subprotocols=["text.ircv3.net"]):
                check(False, f"{label} is refused")
        except InvalidStatus as refused:
            check(refused.response.status_code == 403, f"{label} is refused with 403")

    if failures:
        print(f"{len(failures)} checks failed", flush=True)
        sys.exit(1)
    print("all checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
