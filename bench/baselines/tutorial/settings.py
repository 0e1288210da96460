"""Settings for the Channels-tutorial baseline: no database, no apps beyond channels.

CHANNEL_LAYER picks `redis` (channels_redis.core.RedisChannelLayer) or `pubsub`
(channels_redis.pubsub.RedisPubSubChannelLayer); REDIS_URL says where Redis is. Both layers
keep the library's defaults, as a reader of the tutorial would.
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
        "CONFIG": {"hosts": [_REDIS_URL]},
    }
}
