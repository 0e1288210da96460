"""The channel layer: channels-redis's Pub/Sub layer, except that a payload we can't read is skipped.

Several deployments or test runs may share one Redis. A payload another one published (other keys, another
format) fails to decrypt here, and the stock layer raises that from `receive()`, which ends the consumer
waiting on it: a counsellor's dashboard socket would drop, and a flag raised while it reconnects would be
listed without its sound. The room hub has always skipped such payloads; this does the same for every
consumer (the staff sockets on /ws/moderation/ are ordinary Channels consumers).
"""

from __future__ import annotations

import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from cryptography.fernet import InvalidToken

logger = logging.getLogger("saathi.layers")

# What a payload that isn't ours raises while being decrypted or decoded (channels-redis serializers).
UNREADABLE_EVENT_ERRORS: tuple[type[BaseException], ...] = (InvalidToken, ValueError, TypeError, KeyError)


class UnreadableEvent(Exception):
    """A channel-layer payload this deployment can't decrypt or decode."""


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def deserialize(self, message: bytes) -> dict[str, Any]:
        try:
            return super().deserialize(message)
        except UNREADABLE_EVENT_ERRORS as exc:
            raise UnreadableEvent(type(exc).__name__) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        while True:
            try:
                return await self._get_layer().receive(channel)
            except UnreadableEvent as exc:
                logger.warning("dropped an unreadable channel-layer event (%s)", exc)
