"""Python `websockets` echo server for test/interop/python.test.ts.

Usage: py_server.py (deflate|none)

Listens on an ephemeral port on 127.0.0.1 and prints {"event": "listening", "port": N}. Offers
subprotocol chat.v1. On path /server-close it sends "closing" and closes with 4002 and a UTF-8
reason; on any other path it echoes every message. When a connection ends it prints what it
observed: the negotiated subprotocol and extensions, the client's offer, every message received
(type, size, sha256, in order) and the Close frames it received and sent. Runs until stdin
closes.
"""
import asyncio
import hashlib
import json
import sys

import websockets

SERVER_CLOSE_REASON = "server-bye ✓ 😀"


def describe(message):
    data = message.encode("utf-8") if isinstance(message, str) else message
    return {
        "binary": not isinstance(message, str),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


async def handler(ws, path=None):
    record = {
        "event": "closed",
        "path": ws.path,
        "subprotocol": ws.subprotocol,
        "extensions": [e.name for e in ws.extensions],
        "request_extensions": ws.request_headers.get("Sec-WebSocket-Extensions"),
        "response_extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
        "received": [],
        "error": None,
    }
    try:
        if ws.path == "/server-close":
            await ws.send("closing")
            await ws.close(4002, SERVER_CLOSE_REASON)
        else:
            async for message in ws:
                record["received"].append(describe(message))
                await ws.send(message)
    except websockets.ConnectionClosed as e:
        # ConnectionClosedError for codes other than 1000/1001, even after a clean handshake.
        record["error"] = type(e).__name__
    await ws.wait_closed()
    record["close_code"] = ws.close_code
    record["close_reason"] = ws.close_reason
    record["close_sent"] = [ws.close_sent.code, ws.close_sent.reason] if ws.close_sent else None
    record["close_rcvd_then_sent"] = ws.close_rcvd_then_sent
    print(json.dumps(record), flush=True)


async def main(compression):
    async with websockets.serve(
        handler,
        "127.0.0.1",
        0,
        compression="deflate" if compression == "deflate" else None,
        subprotocols=["chat.v1"],
        max_size=16 * 2**20,
        ping_interval=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"event": "listening", "port": port}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
