"""The payload census: a pytest plugin that checks everything the server sends, for the whole run.

docs/privacy.md promises that no payload sent to a peer holds a username, email, IP address or account id.
This plugin checks that promise against every payload the test suite sees, not a hand-picked few:

- every WebSocket frame a `channels.testing.WebsocketCommunicator` receives (room and moderation sockets),
- every JSON or HTML response a `django.test.Client` receives,
- every frame `tests.system.helpers.RoomSocket` reads from a real daphne (pass 2).

A payload fails if it contains an email address, the username of any account created during the run
(recorded by a post_save signal), an IPv4/IPv6 address, an author key (`u:<digits>`, `g:<digits>`,
`x:<hex>`), or (JSON) a field named user_id / username / email / author_key / ip. A finding fails the
test that received the payload (at its teardown, naming the place and the field) and the session, and
is printed with a short *redacted* excerpt: a payload can be health data, so it is never printed whole.

Places where a person legitimately sees their OWN data, and the staff pages the docs allow, are excluded
below (`EXCLUDED_PATHS`), each with its reason. The terminal summary says how many payloads were checked.

Registered from tests/conftest.py (`pytest_plugins`). Tests that check the detector itself use
`Census.findings_in(...)` on a private instance, so they never add findings to the run.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# The test Client's address: distinctive, so an address that leaked into a page can't hide behind the
# site's own 127.0.0.1 in its links. (TEST-NET-2, RFC 5737: never a real person.)
CLIENT_ADDRESS = "198.51.100.7"

# path prefix -> why the census doesn't look there
EXCLUDED_PATHS: dict[str, str] = {
    "/accounts/me/export/": "a person's own data export: their username and email, by design",
    "/accounts/sign-up/": "the sign-up form echoes the person's own username and email back to them",
    "/accounts/sign-in/": "the sign-in form echoes the person's own username back after a wrong password",
    "/accounts/second-factor/": "staff set up their own authenticator: the otpauth URL names their username",
    "/accounts/password/": "the password-change form: the person's own account",
    "/admin/": "the admin site: docs/privacy.md says admins (with a second factor) may see account data",
}
FORBIDDEN_FIELDS = frozenset({"user_id", "userid", "username", "email", "author_key", "ip", "ip_address"})
# User-typed text in a frame (what a member wrote is theirs to share, even an address or an email):
# the census checks what the SERVER adds, so these fields are left out of the pattern scan.
AUTHORED_FIELDS = frozenset({"body", "html"})

# Field or type names that would tell a member who read a message, who is typing, or when someone was last around
# (docs/privacy.md: none of these without an opt-in, and there is no opt-in yet).
TRACKING = re.compile(r"typing|receipt|(^|_|\.)read(_|$)|read_by|seen|last_active|delivered|online_since|idle")
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
AUTHOR_KEY = re.compile(r"(?<![\w:])(?:[ug]:\d+|x:[0-9a-f]{6,})(?![\w:])")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


@dataclass(frozen=True, slots=True)
class Finding:
    where: str  # test id, then the path and the field
    kind: str
    excerpt: str  # redacted: never the payload

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} in {self.excerpt}"


def redact(text: str, start: int, end: int, width: int = 12) -> str:
    """Return a short excerpt around text[start:end] with the match masked (shape only) and letters hidden."""
    match = text[start:end]
    masked = match[:1] + re.sub(r"[A-Za-z0-9]", "*", match[1:])
    before = re.sub(r"[A-Za-z0-9]", "·", text[max(0, start - width) : start])
    after = re.sub(r"[A-Za-z0-9]", "·", text[end : end + width])
    return f"…{before}[{masked}]{after}… ({len(text)} chars)"


@dataclass
class Census:
    """What was checked, what was found, and the private identifiers to look for."""

    checked: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    usernames: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    frame_types: Counter[str] = field(default_factory=Counter)
    frame_fields: dict[str, set[str]] = field(default_factory=dict)
    current_test: str = "(outside a test)"
    _username_re: re.Pattern[str] | None = None

    # -- what to look for --
    def remember_user(self, username: str, email: str) -> None:
        if username and len(username) >= 4 and username not in self.usernames:
            self.usernames.add(username)
            self._username_re = None
        if email:
            self.emails.add(email.lower())

    def _usernames(self) -> re.Pattern[str] | None:
        if self._username_re is None and self.usernames:
            alternatives = "|".join(re.escape(u) for u in sorted(self.usernames, key=len, reverse=True))
            self._username_re = re.compile(rf"(?<![\w@.-])(?:{alternatives})(?![\w@-])", re.IGNORECASE)
        return self._username_re

    # -- checking --
    def findings_in_text(self, text: str, where: str) -> Iterator[Finding]:
        for kind, pattern in (("an email address", EMAIL), ("an author key", AUTHOR_KEY)):
            for m in pattern.finditer(text):
                yield Finding(where, kind, redact(text, m.start(), m.end()))
        for kind, pattern, parse in (
            ("an IPv4 address", IPV4, ipaddress.IPv4Address),
            ("an IPv6 address", IPV6, ipaddress.IPv6Address),
        ):
            for m in pattern.finditer(text):
                if text[max(0, m.start() - 3) : m.start()] == "://":
                    continue  # the site's own host in one of its links, not a person's address
                try:
                    parse(m.group())
                except ValueError:
                    continue
                yield Finding(where, kind, redact(text, m.start(), m.end()))
        usernames = self._usernames()
        if usernames is not None:
            for m in usernames.finditer(text):
                yield Finding(where, "a username", redact(text, m.start(), m.end()))

    def findings_in_json(self, value: Any, where: str, path: str = "") -> Iterator[Finding]:
        if isinstance(value, dict):
            for key, item in value.items():
                here = f"{path}.{key}" if path else str(key)
                if str(key).lower() in FORBIDDEN_FIELDS:
                    yield Finding(f"{where} field {here}", f"a field named {key!r}", "(value not shown)")
                if key in AUTHORED_FIELDS and isinstance(item, str):
                    continue
                yield from self.findings_in_json(item, where, here)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from self.findings_in_json(item, where, f"{path}[{index}]")
        elif isinstance(value, str):
            yield from self.findings_in_text(value, f"{where} field {path or '(top)'}")

    def findings_in(self, payload: str | bytes, *, kind: str, where: str) -> list[Finding]:
        """Return the findings in one payload (`kind` is "json" or "html")."""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        if kind == "json":
            try:
                return list(self.findings_in_json(json.loads(text), where))
            except ValueError:
                pass
        return list(self.findings_in_text(text, where))

    def check(self, payload: str | bytes, *, kind: str, channel: str, place: str) -> None:
        self.checked[channel] += 1
        where = f"{self.current_test} [{channel} {place}]"
        self.findings.extend(self.findings_in(payload, kind=kind, where=where))

    def note_frame(self, text: str) -> None:
        """Remember the frame's type and field names (the census of the protocol's vocabulary)."""
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if isinstance(frame, dict):
            kind = str(frame.get("type"))
            self.frame_types[kind] += 1
            self.frame_fields.setdefault(kind, set()).update(_field_names(frame))


def _field_names(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}{key}"
            yield name
            yield from _field_names(item, name + ".")
    elif isinstance(value, list):
        for item in value:
            yield from _field_names(item, prefix)


CENSUS = Census()


def excluded(path: str) -> bool:
    return any(path.startswith(prefix) for prefix in EXCLUDED_PATHS)


# --- The wrappers ----------------------------------------------------------------------------------------


def _wrap_websocket_communicator() -> None:
    from channels.testing import WebsocketCommunicator

    if getattr(WebsocketCommunicator.receive_output, "_census", False):
        return
    original = WebsocketCommunicator.receive_output

    @functools.wraps(original)
    async def receive_output(self: Any, timeout: float = 1) -> Any:
        message = await original(self, timeout)
        if isinstance(message, dict) and message.get("type") == "websocket.send" and message.get("text"):
            path = self.scope.get("path", "?")
            CENSUS.check(message["text"], kind="json", channel="frame", place=path)
            CENSUS.note_frame(message["text"])
        return message

    receive_output._census = True  # type: ignore[attr-defined]
    WebsocketCommunicator.receive_output = receive_output  # type: ignore[method-assign]


def _check_response(response: Any) -> None:
    content_type = response.get("Content-Type", "") if hasattr(response, "get") else ""
    if getattr(response, "streaming", False) or not content_type:
        return
    kind = "json" if "json" in content_type else "html" if "html" in content_type else None
    if kind is None:
        return
    request = getattr(response, "wsgi_request", None) or getattr(response, "asgi_request", None)
    path = request.path if request is not None else "?"
    if excluded(path):
        return
    CENSUS.check(response.content, kind=kind, channel="http", place=f"{request.method if request else ''} {path}")


def _wrap_test_client() -> None:
    from django.test import client as test_client

    for cls in (test_client.Client, test_client.AsyncClient):
        if getattr(cls.request, "_census", False):
            continue
        original_init = cls.__init__

        @functools.wraps(original_init)
        def __init__(self: Any, *args: Any, __original: Any = original_init, **defaults: Any) -> None:
            defaults.setdefault("REMOTE_ADDR", CLIENT_ADDRESS)
            __original(self, *args, **defaults)

        cls.__init__ = __init__  # type: ignore[method-assign]

    original = test_client.Client.request

    @functools.wraps(original)
    def request(self: Any, **kwargs: Any) -> Any:
        response = original(self, **kwargs)
        _check_response(response)
        return response

    request._census = True  # type: ignore[attr-defined]
    test_client.Client.request = request  # type: ignore[method-assign]

    original_async = test_client.AsyncClient.request

    @functools.wraps(original_async)
    async def arequest(self: Any, **kwargs: Any) -> Any:
        response = await original_async(self, **kwargs)
        _check_response(response)
        return response

    arequest._census = True  # type: ignore[attr-defined]
    test_client.AsyncClient.request = arequest  # type: ignore[method-assign]


def _wrap_system_sockets() -> None:
    """Pass 2: frames a real daphne sent to tests.system.helpers.RoomSocket."""
    import sys

    helpers = sys.modules.get("tests.system.helpers")
    if helpers is None or getattr(helpers.RoomSocket.frame, "_census", False):
        return
    original = helpers.RoomSocket.frame

    @functools.wraps(original)
    async def frame(self: Any, timeout: float = 5) -> Any:
        result = await original(self, timeout)
        text = json.dumps(result)
        CENSUS.check(text, kind="json", channel="daphne frame", place=self.url.split("/", 3)[-1])
        CENSUS.note_frame(text)
        return result

    frame._census = True  # type: ignore[attr-defined]
    helpers.RoomSocket.frame = frame


def _record_user(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    CENSUS.remember_user(getattr(instance, "username", "") or "", getattr(instance, "email", "") or "")


# --- Hooks -----------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "census_off: this test sends private data on purpose; don't count it")


def pytest_sessionstart(session: pytest.Session) -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_save

    post_save.connect(_record_user, sender=get_user_model(), dispatch_uid="privacy-census-users")
    _wrap_websocket_communicator()
    _wrap_test_client()


def pytest_collection_finish(session: pytest.Session) -> None:
    _wrap_system_sockets()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    CENSUS.current_test = item.nodeid
    try:
        return (yield)
    finally:
        CENSUS.current_test = "(between tests)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    result = yield
    # Findings from this test (its fixtures included) fail it here, at teardown, where the place is known.
    mine = [f for f in CENSUS.findings if f.where.startswith(item.nodeid + " ")]
    if mine and item.get_closest_marker("census_off"):
        CENSUS.findings[:] = [f for f in CENSUS.findings if f not in mine]
    elif mine:
        lines = "\n  ".join(str(f) for f in mine[:20])
        pytest.fail(f"privacy census: {len(mine)} private value(s) reached a client:\n  {lines}", pytrace=False)
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for kind, names in sorted(CENSUS.frame_fields.items()):
        for name in sorted(n for n in names | {kind} if TRACKING.search(n)):
            CENSUS.findings.append(Finding(f"frame type {kind!r}", "a read/typing/last-seen field", name))
    if CENSUS.findings and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    total = sum(CENSUS.checked.values())
    parts = ", ".join(f"{n} {channel}" for channel, n in sorted(CENSUS.checked.items())) or "none"
    terminalreporter.write_sep("-", "privacy census")
    terminalreporter.write_line(
        f"privacy census: {total} payloads checked ({parts}); {len(CENSUS.usernames)} usernames watched; "
        f"{len(CENSUS.frame_types)} frame types seen; {len(CENSUS.findings)} findings"
    )
    if CENSUS.frame_types:
        types = ", ".join(f"{kind} {n}" for kind, n in CENSUS.frame_types.most_common())
        terminalreporter.write_line(f"privacy census: frame types seen: {types}")
    for finding in CENSUS.findings[:50]:
        terminalreporter.write_line(f"  LEAK {finding}", red=True)
