"""The only module that imports nh3: turn a member's plain text into safe, linkified HTML.

Bodies are stored as typed and the browser renders them with textContent; this HTML is a second fence
for clients that want links. bleach was the original choice; it was declared unmaintained on
2026-06-05, so this uses nh3 (the Rust ammonia sanitiser) instead.
"""

from __future__ import annotations

import nh3
from django.utils.html import urlize

_ALLOWED_TAGS = {"a", "br"}
_ALLOWED_ATTRIBUTES = {"a": {"href"}}
_URL_SCHEMES = {"http", "https"}


def render_html(body: str) -> str:
    """Return the sanitised HTML rendering of a plain-text message body."""
    linked = urlize(body, trim_url_limit=60, nofollow=False, autoescape=True).replace("\n", "<br>")
    return nh3.clean(
        linked,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
    )
