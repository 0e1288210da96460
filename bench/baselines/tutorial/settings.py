"""Settings for the Channels-tutorial baseline: no database, no apps beyond channels.

CHANNEL_LAYER picks `redis` (channels_redis.core.RedisChannelLayer) or `pubsub`
(channels_redis.pubsub.RedisPubSubChannelLayer); REDIS_URL says where Redis is. Both layers
keep the library's defaults, as a reader of the tutorial would, with one exception: redis-py 8 caps a
connection pool at 100 connections by default (it was unlimited before), and RedisChannelLayer then fails
handshakes with HTTP 500 ("Too many connections") when a thousand sockets connect or leave at once. The
pool is given back its old, unlimited size, so the baseline measures Channels, not that new default.
"""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["daphne", "channels"]
ROOT_URLCONF = "bench.baselines.tutorial.urls"
ASGI_APPLICATION = "bench.baselines.tutorial.asgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"handlers": [], "level": "WARNING"}}

_BACKENDS = {
    "redis": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
_REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _BACKENDS[os.environ.get("CHANNEL_LAYER", "redis")],
        "CONFIG": {"hosts": [{"address": _REDIS_URL, "max_connections": 2**31}]},  # redis-py < 8's default
    }
}
