"""ASGI entry point of the tutorial baseline: `daphne bench.baselines.tutorial.asgi:application`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baselines.tutorial.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from bench.baselines.tutorial.consumers import ChatConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter([path("ws/rooms/<slug:slug>/", ChatConsumer.as_asgi())])),
    }
)
