"""The channel layer's messages are encrypted in Redis: a raw subscriber sees no words and no handles.

In-process, against the real Redis (skipped when it isn't there; CI=true fails instead): the layer is
built from the settings exactly as a server builds it, a room event carrying a canary is published the way
chat/broadcast.py publishes, and a raw redis-py subscriber on the layer's channels ("saathi…") reads what
Redis carried. tests/system/test_privacy_stack.py does the same through a real daphne process.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def layer_settings(redis_url: str) -> dict:
    """Return CHANNEL_LAYERS as config/settings.py builds it when REDIS_URL is set (in a fresh interpreter)."""
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SECRET_KEY": "encryption-test-" + secrets.token_hex(16)}
    code = "import json, config.settings as s; print(json.dumps(s.CHANNEL_LAYERS))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_with_redis_the_settings_choose_an_encrypted_pubsub_layer(redis_url: str) -> None:
    layer = layer_settings(redis_url)["default"]
    assert layer["BACKEND"] == "chat.layers.PubSubChannelLayer"  # channels-redis Pub/Sub, skipping unreadable payloads
    assert layer["CONFIG"]["prefix"] == "saathi"
    assert layer["CONFIG"]["symmetric_encryption_keys"] and all(layer["CONFIG"]["symmetric_encryption_keys"])


async def test_a_raw_redis_subscriber_sees_no_words_and_no_handles(redis_url: str) -> None:
    import redis.asyncio as redis

    from chat.layers import PubSubChannelLayer

    config = layer_settings(redis_url)["default"]["CONFIG"]
    layer = PubSubChannelLayer(**config)
    canary, handle = f"canary-{secrets.token_hex(8)}", f"Harbour {secrets.token_hex(3)}"
    group = f"room.privacy-{secrets.token_hex(4)}"  # unique: the shared Redis carries other runs' rooms too
    frame = json.dumps({"type": "message", "id": 1, "handle": handle, "body": f"Day 5. {canary}"})
    raw = redis.Redis.from_url(redis_url)
    pubsub = raw.pubsub()
    await pubsub.psubscribe(f"{config['prefix']}*")
    carried: list[tuple[bytes, bytes]] = []
    try:
        channel = await layer.new_channel("hub.")
        await layer.group_add(group, channel)
        await layer.group_send(group, {"type": "room.frame", "room": group, "seq": 1, "text": frame, "own": frame})
        received = await asyncio.wait_for(layer.receive(channel), 5)
        assert received["text"] == frame  # the layer itself still reads it (the key works)
        deadline = asyncio.get_running_loop().time() + 2
        while asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                carried.append((message["channel"], message["data"]))
                if group.encode() in message["channel"]:
                    break
        await layer.group_discard(group, channel)
    finally:
        await pubsub.punsubscribe()
        await pubsub.aclose()
        await raw.aclose()
        await layer.flush()
    ours = [data for name, data in carried if group.encode() in name]
    assert ours, "the raw subscriber saw nothing of this test's group: the check would prove nothing"
    for _, data in carried:
        for secret in (canary, handle, "Day 5."):
            assert secret.encode() not in data, "a channel-layer payload crossed Redis in plaintext"


async def test_a_payload_sealed_with_another_key_is_skipped_and_the_next_one_still_arrives(redis_url: str) -> None:
    """Another deployment (or test run) on the same Redis and prefix must not end our consumers' sockets."""
    from chat.layers import PubSubChannelLayer

    config = layer_settings(redis_url)["default"]["CONFIG"]
    ours = PubSubChannelLayer(**config)
    theirs = PubSubChannelLayer(**{**config, "symmetric_encryption_keys": ["another deployment's key"]})
    group = f"saathi.moderation-{secrets.token_hex(4)}"
    try:
        channel = await ours.new_channel("staff.")
        await ours.group_add(group, channel)
        await theirs.group_send(group, {"type": "moderation.frame", "frame": {"type": "flag", "id": 0}})
        await ours.group_send(group, {"type": "moderation.frame", "frame": {"type": "flag", "id": 7}})
        received = await asyncio.wait_for(ours.receive(channel), 5)
        assert received["frame"]["id"] == 7
        await ours.group_discard(group, channel)
    finally:
        await ours.flush()
        await theirs.flush()
