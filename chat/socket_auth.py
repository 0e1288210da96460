"""The WebSocket handshake's middleware: the same-origin check, then Channels' session and user.

It does what `SameOriginValidator(AuthMiddlewareStack(inner))` did, with Channels' own pieces (its
lazy session and user objects, `channels.auth.get_user`), in one layer and one copy of the scope.
Every ASGI layer stays suspended for the socket's whole life, holding its coroutine frame and its own
copy of the scope; the stack's four layers cost ~2 KiB per idle socket. Channels' session wrapper of
`send` is left out: it only acts on `http.response.start`, which a WebSocket never sends.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import UserLazyObject, get_user
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http import parse_cookie
from django.utils.functional import LazyObject

from chat.origin import same_origin


class SocketAuthMiddleware:
    """ASGI middleware for WebSockets: deny other origins (HTTP 403), add cookies, session and user."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        cookies = next(
            (parse_cookie(value.decode("latin1")) for name, value in scope["headers"] if name == b"cookie"), {}
        )
        session = LazyObject()
        session._wrapped = import_module(settings.SESSION_ENGINE).SessionStore(
            cookies.get(settings.SESSION_COOKIE_NAME)
        )
        scope = dict(scope, cookies=cookies, session=session, user=UserLazyObject())
        scope["user"]._wrapped = await get_user(scope)
        return await self.inner(scope, receive, send)
