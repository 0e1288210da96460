"""Refuse cross-site WebSocket handshakes: the Origin must be this very site (scheme, host and port).

Channels' AllowedHostsOriginValidator only compares the Origin's *host* with ALLOWED_HOSTS, so a page on
another port of the same host (http://127.0.0.1:9999, http://localhost:3000) passes, and the browser
sends it the victim's cookies (cookies ignore ports): a cross-site WebSocket hijack. Here the Origin must
name the host and port the browser connected to (the Host header), that host must be one Django serves,
and the scheme must be http(s) (https only when the site redirects to HTTPS, as in production). A missing, `null` or look-alike Origin is
refused before the consumer runs, so the socket never opens (the client sees HTTP 403).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": "80", "https": "443"}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    if len(values) != 1:  # absent, or sent twice (ambiguous: refuse)
        return None
    try:
        return str(values[0].decode("ascii")).strip().lower()
    except UnicodeDecodeError:
        return None


def _without_default_port(netloc: str, scheme: str) -> str:
    host, port = split_domain_port(netloc)
    if not host:
        return ""
    return host if port in ("", DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"


def same_origin(scope: dict[str, Any]) -> bool:
    """Return whether this handshake comes from a page of this site (the Host it was sent to)."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    if not origin or not host or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    # A site that redirects every page to HTTPS (production) has no http pages of its own.
    allowed_schemes = ("https",) if settings.SECURE_SSL_REDIRECT else ("http", "https")
    if parts.scheme not in allowed_schemes or parts.path not in ("", "/") or parts.query or parts.username:
        return False
    origin_netloc = _without_default_port(parts.netloc, parts.scheme)
    if not origin_netloc or origin_netloc != _without_default_port(host, parts.scheme):
        return False
    domain, _ = split_domain_port(host)
    return validate_host(domain, settings.ALLOWED_HOSTS)
