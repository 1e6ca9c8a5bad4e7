"""Python `websockets` client for test/interop/python.test.ts.

Usage: py_client.py URL (deflate|none)

Connects to our server offering subprotocols chat.v2 and chat.v1, expects the server's
"welcome:<subprotocol>" push, sends text (ASCII, emoji), binary (all byte values), 1 MiB of
random bytes, 1 MiB of compressible text and 100 ordered messages, checks every echo (type and
content), then closes with 4000 and a UTF-8 reason. Prints one JSON object on stdout: what it
negotiated, what it sent (type, size, sha256 of each message, in order), each check's outcome
and the closing handshake as it saw it.
"""
import asyncio
import hashlib
import json
import os
import sys

import websockets

CLOSE_REASON = "python-bye ✓ 😀"


def describe(message):
    data = message.encode("utf-8") if isinstance(message, str) else message
    return {
        "binary": not isinstance(message, str),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def compressible_text(size):
    parts, total, i = [], 0, 0
    while total < size:
        line = '{"id":%d,"name":"user-%d","tags":["a","b"]}\n' % (i, i % 97)
        parts.append(line)
        total += len(line)
        i += 1
    return "".join(parts)[:size]


async def main(url, compression):
    out = {"version": websockets.__version__, "checks": {}, "sent": []}
    ws = await websockets.connect(
        url,
        compression="deflate" if compression == "deflate" else None,
        subprotocols=["chat.v2", "chat.v1"],
        max_size=16 * 2**20,
        open_timeout=10,
        ping_interval=None,
    )
    out["subprotocol"] = ws.subprotocol
    out["extensions"] = [e.name for e in ws.extensions]
    out["response_extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions")
    out["request_extensions"] = ws.request_headers.get("Sec-WebSocket-Extensions")

    welcome = await ws.recv()
    out["checks"]["server_push"] = welcome == "welcome:%s" % ws.subprotocol

    async def echo(name, message):
        out["sent"].append(describe(message))
        await ws.send(message)
        reply = await ws.recv()
        out["checks"][name] = type(reply) is type(message) and reply == message

    await echo("text_ascii", "hello from python")
    await echo("text_emoji", "héllo — 😀🎉 ✓ 漢字 𝄞")
    await echo("binary_all_bytes", bytes(range(256)))
    await echo("binary_empty", b"")
    await echo("binary_1mib_random", os.urandom(2**20))
    await echo("text_1mib_compressible", compressible_text(2**20))

    ordered = ["ordered-%d" % i for i in range(100)]
    for message in ordered:
        out["sent"].append(describe(message))
        await ws.send(message)
    replies = [await ws.recv() for _ in ordered]
    out["checks"]["ordered_100"] = replies == ordered

    await ws.close(4000, CLOSE_REASON)
    out["close_sent"] = [ws.close_sent.code, ws.close_sent.reason] if ws.close_sent else None
    out["close_code"] = ws.close_code
    out["close_reason"] = ws.close_reason
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
