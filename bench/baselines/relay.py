"""Baseline (a): a plain `websockets` relay, one process, no Django, no Redis, no database.

It speaks Saathi's frame shapes so the load generator is shared: on connect it sends a
`welcome` frame; on `{"type": "send", "body", "client_id"}` it encodes ONE `message` frame
and hands it to `websockets.broadcast()` for every member of the room, sender included.
(Saathi puts `client_id` only on the sender's own copy; the relay sends one frame to all,
which is the point of this baseline: the cheapest fan-out Python can do.)

Run: python -m bench.baselines.relay --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOMS: dict[str, set[ServerConnection]] = {}
COUNTERS: dict[str, itertools.count[int]] = {}
HANDLES = itertools.count(1)


async def handler(ws: ServerConnection) -> None:
    url = urlsplit(ws.request.path)
    parts = [p for p in url.path.split("/") if p]
    if len(parts) != 3 or parts[:2] != ["ws", "rooms"]:
        await ws.close(4404, "no such room")
        return
    slug = parts[2]
    handle = parse_qs(url.query).get("handle", [f"guest-{next(HANDLES)}"])[0]
    members = ROOMS.setdefault(slug, set())
    counter = COUNTERS.setdefault(slug, itertools.count(1))
    members.add(ws)
    try:
        await ws.send(
            json.dumps(
                {
                    "type": "welcome",
                    "room": {"slug": slug, "name": slug, "state": "open"},
                    "you": {"handle": handle, "role": "guest"},
                    "history": [],
                    "last_id": 0,
                }
            )
        )
        async for raw in ws:
            try:
                frame = json.loads(raw)
                body, client_id = frame["body"], frame["client_id"]
            except (ValueError, KeyError, TypeError):
                await ws.send(json.dumps({"type": "error", "code": "invalid", "detail": "Bad frame."}))
                continue
            out = json.dumps(
                {
                    "type": "message",
                    "id": next(counter),
                    "handle": handle,
                    "body": body,
                    "sent_at": datetime.now(UTC).isoformat(),
                    "client_id": client_id,
                }
            )
            broadcast(members, out)
    finally:
        members.discard(ws)


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # Defaults otherwise; compression off because none of the other targets compress.
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
