"""The channel layer: channels-redis's Pub/Sub layer, plus three things the room hub needs.

- **A payload we can't read is skipped.** Several deployments or test runs may share one Redis. A payload
  another one published (other keys, another format) fails to decrypt here, and the stock layer raises
  that from `receive()`, which ends the consumer waiting on it: a counsellor's dashboard socket would drop,
  and a flag raised while it reconnects would be listed without its sound.
- **Our own echo is dropped unread.** A process delivers its own room frames to its members at once, then
  publishes them for the other processes; Redis sends them back to it too. Every payload starts with a
  16-byte origin mark (zeros, or this process's random mark on an event it has already delivered), so the
  echo is dropped before it is decrypted and decoded.
- **Many events, one round trip.** `group_send_many` publishes a batch of events in one Redis pipeline.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from cryptography.fernet import InvalidToken

logger = logging.getLogger("saathi.layers")

# What a payload that isn't ours raises while being decrypted or decoded (channels-redis serializers).
UNREADABLE_EVENT_ERRORS: tuple[type[BaseException], ...] = (InvalidToken, ValueError, TypeError, KeyError)
ORIGIN_BYTES = 16
NO_ORIGIN = bytes(ORIGIN_BYTES)  # anyone may need this event, its publisher included


class UnreadableEvent(Exception):
    """A channel-layer payload this deployment can't decrypt or decode."""


class OwnEcho(Exception):
    """An event this process published after delivering it itself."""


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origin = secrets.token_bytes(ORIGIN_BYTES)

    def serialize(self, message: dict[str, Any], *, delivered_here: bool = False) -> bytes:
        return (self.origin if delivered_here else NO_ORIGIN) + super().serialize(message)

    def deserialize(self, message: bytes) -> dict[str, Any]:
        if message[:ORIGIN_BYTES] == self.origin:
            raise OwnEcho
        try:
            return super().deserialize(message[ORIGIN_BYTES:])
        except UNREADABLE_EVENT_ERRORS as exc:
            raise UnreadableEvent(type(exc).__name__) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        while True:
            try:
                return await self._get_layer().receive(channel)
            except OwnEcho:
                continue
            except UnreadableEvent as exc:
                logger.warning("dropped an unreadable channel-layer event (%s)", exc)

    async def group_send_many(self, events: list[tuple[str, dict[str, Any], bool]]) -> None:
        """Publish (group, event, delivered_here) triples in order, one pipeline per Redis shard."""
        layer = self._get_layer()
        by_shard: dict[Any, list[tuple[str, bytes]]] = {}
        for group, event, delivered_here in events:
            channel = layer._get_group_channel_name(group)
            payload = self.serialize(event, delivered_here=delivered_here)
            by_shard.setdefault(layer._get_shard(channel), []).append((channel, payload))
        for shard, payloads in by_shard.items():
            async with shard._lock:  # the shard's own lock, as its `publish` takes it
                shard._ensure_redis()
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for channel, payload in payloads:
                        pipe.publish(channel, payload)
                    await pipe.execute()
