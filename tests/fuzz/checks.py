"""Checks shared by the hostile-input suites (in-process, real socket, browser): what "safe" means."""

from __future__ import annotations

import unicodedata
from html.parser import HTMLParser
from typing import Any

from chat import protocol
from chat.protocol import ErrorCode, ProtocolError, parse_client_frame
from tests.fuzz import strategies as hs

BIDI = frozenset(hs.BIDI)
KNOWN_ERROR_CODES = {code.value for code in ErrorCode}


def stored_text_problems(text: str) -> list[str]:
    """Return what is wrong with text that was accepted for storage (empty if nothing)."""
    problems = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch == "\x00":
            problems.append("NUL")
        elif category == "Cs":
            problems.append(f"surrogate U+{ord(ch):04X}")
        elif category == "Cc" and ch not in "\n\t":
            problems.append(f"control U+{ord(ch):04X}")
        elif ch in BIDI:
            problems.append(f"bidi control U+{ord(ch):04X}")
    return problems


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", {}))

    def handle_decl(self, decl: str) -> None:
        self.tags.append(("!decl", {}))

    def unknown_decl(self, data: str) -> None:
        self.tags.append(("!decl", {}))

    def handle_pi(self, data: str) -> None:
        self.tags.append(("?pi", {}))


def html_problems(html: str) -> list[str]:
    """Return why this `html` field is unsafe: only <a href="http(s)://…" rel=…> and <br> may appear."""
    parser = _Markup()
    parser.feed(html)
    parser.close()
    problems = []
    for tag, attrs in parser.tags:
        if tag == "br" and not attrs:
            continue
        if tag != "a":
            problems.append(f"<{tag}> element")
            continue
        href = attrs.get("href") or ""
        extra = set(attrs) - {"href", "rel"}
        if extra:
            problems.append(f"<a> attributes {sorted(extra)}")
        if not href.lower().startswith(("http://", "https://")):
            problems.append(f"<a> without a web href: {href[:40]!r}")
        if attrs.get("rel") != "nofollow noopener noreferrer":
            problems.append(f"<a rel={attrs.get('rel')!r}>")
    if (
        "javascript:" in html.lower().replace("&#", "")
        and "<a" in html
        and any("javascript:" in (a.get("href") or "").lower() for _, a in parser.tags)
    ):
        problems.append("javascript: link")
    return problems


def expected_reply(raw: str | bytes | None) -> tuple[str, Any, Any]:
    """What the server must answer to one frame, according to the pure parser."""
    try:
        request = parse_client_frame(raw)
    except ProtocolError as refusal:
        return ("error", refusal.code.value, refusal.client_id)
    if isinstance(request, protocol.SendRequest):
        return ("message", str(request.client_id), request.body)
    if isinstance(request, protocol.PingRequest):
        return ("pong", None, None)
    if isinstance(request, protocol.ResumeRequest):
        return ("resumed", request.after, None)
    return ("extension", type(request).__name__, None)  # hand, report, mod, support_reply: other apps answer
