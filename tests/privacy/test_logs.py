"""Logs never hold what a member wrote, nor a handle next to an IP address (in-process; see also
tests/system/test_privacy_stack.py for real daphne processes, Redis and PostgreSQL).

Each test sends a unique canary through the real paths (stored messages, every refusal, a crisis flag, a
report, a forced exception inside the consumer, a failing page) with every logger at DEBUG, then renders
every captured record with the settings' own formatter, exception and stack included, and looks for it.
"""

from __future__ import annotations

import json
import re

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from tests.consumers.conftest import cookie_for
from tests.consumers.test_room_socket import join
from tests.factories import make_room, make_user
from tests.integration.test_moderation_helpers import counsellor, rota
from tests.privacy.conftest import rendered

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

CRISIS = "I want to kill myself tonight, I have the pills ready"
IP = re.compile(
    r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])|(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])"
)


def assert_clean(logs: pytest.LogCaptureFixture, canary: str, handles: list[str]) -> int:
    """Return how many records were checked; fail naming the logger (never printing the record)."""
    lines = [(r.name, r.levelname, rendered(r)) for r in logs.records]
    holding = [(name, level) for name, level, text in lines if canary in text]
    assert holding == [], f"the canary reached these log records: {holding}"
    paired = [
        (name, level)
        for name, level, text in lines
        for line in text.splitlines()
        if IP.search(line) and any(h in line for h in handles)
    ]
    assert paired == [], f"a handle next to an IP address in: {paired}"
    return len(lines)


async def answer_to(client, client_id: str) -> dict:  # type: ignore[no-untyped-def]
    """Return the sender's own copy of this send, or the error about it."""
    while True:
        frame = await client.frame()
        if frame.get("client_id") == client_id:
            return frame


async def test_a_canary_sent_down_every_room_path_reaches_no_log(all_logs, canary, settings, monkeypatch):
    from chat import services
    from moderation import services as moderation

    settings.SAATHI_SEND_RATE = "4/minute"  # the limit is part of the tour
    room, locked_room = await database_sync_to_async(make_room)(), await database_sync_to_async(make_room)()
    await database_sync_to_async(lambda: rota(timezone.now(), primary=counsellor("Counsellor Kabir")))()
    writer = await database_sync_to_async(make_user)(handle="Canary Writer")
    alice, _ = await join(room.slug, await cookie_for(writer))
    bob, _ = await join(room.slug, await cookie_for(guest_handle="Canary Reader"))

    await alice.send(f"Day 3. {canary}")  # stored and broadcast
    assert (await bob.frame_of("message"))["body"].endswith(canary)
    await alice.send(f"{canary} " * 400)  # too long
    assert (await alice.frame_of("error"))["code"] == "too_long"
    await alice.send(f"{CRISIS} {canary}")  # a flag, paged to the counsellor, a support frame back
    assert (await alice.frame_of("support"))["type"] == "support"
    await bob.raw(json.dumps({"type": "report", "message_id": 1, "reason": f"report {canary}"}))
    for n in range(6):  # one at a time until over the limit (4 a minute)
        sent = await alice.send(f"again {n} {canary}")
        answer = await answer_to(alice, sent)
        if answer["type"] == "error":
            break
    assert answer["code"] == "rate_limited"

    # A forced failure inside the consumer: the exception's message quotes the member's words.
    def explode(sends, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"could not store {sends[0].body!r}")

    monkeypatch.setattr(services, "post_messages", explode)
    await bob.send(f"boom {canary}")
    assert (await bob.frame_of("error"))["code"] == "invalid"
    monkeypatch.undo()

    # Refused by a muted member's room and by a locked room.
    await database_sync_to_async(
        lambda: moderation.do_mute(
            room=room,
            actor=moderation.Participant(handle="Mod", author_key="u:0", roles=frozenset({"moderator"})),
            target=moderation.Target(author_key=f"u:{writer.pk}", handle=writer.handle),
            minutes=5,
        )
    )()
    settings.SAATHI_SEND_RATE = "100/second"
    await alice.send(f"muted {canary}")
    assert (await alice.frame_of("error"))["code"] == "muted"
    await database_sync_to_async(type(locked_room).objects.filter(pk=locked_room.pk).update)(locked=True)
    carol, _ = await join(locked_room.slug, await cookie_for(guest_handle="Canary Locked"))
    await carol.send(f"locked {canary}")
    assert (await carol.frame_of("error"))["code"] == "locked"
    for client in (alice, bob, carol):
        await client.close()

    checked = assert_clean(all_logs, canary, ["Canary Writer", "Canary Reader", "Canary Locked"])
    assert checked >= 2  # the forced failure was logged (class and stack), so the capture really worked
    assert any("RuntimeError" in rendered(r) for r in all_logs.records)


async def test_a_forced_failure_on_the_staff_channel_logs_no_words(all_logs, canary, monkeypatch):
    from moderation import services as moderation
    from tests.consumers.conftest import open_socket
    from tests.factories import make_staff

    def explode(**kwargs):  # type: ignore[no-untyped-def]
        raise ValueError(f"bad note {canary}")

    monkeypatch.setattr(moderation, "check_flag_request", explode)
    staff = await database_sync_to_async(make_staff)(moderation.Role.COUNSELLOR)
    client, connected, _ = await open_socket("/ws/moderation/", await cookie_for(staff))
    assert connected
    await client.frame_of("welcome")
    await client.raw(json.dumps({"type": "ack", "flag_id": 1}))
    await client.frame_of("error")
    await client.close()
    assert_clean(all_logs, canary, [staff.handle])
    assert any("ValueError" in rendered(r) for r in all_logs.records)


def test_a_page_that_fails_on_what_someone_typed_logs_no_words(all_logs, canary, monkeypatch):
    """A 500 is logged by Django itself (django.request), with the exception: its message must not be."""
    from accounts import views

    def explode(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"cannot take handle {kwargs.get('handle')!r}")

    monkeypatch.setattr(views, "do_take_guest_pass", explode)
    word = canary[-8:].translate(str.maketrans("0123456789", "ghijklmnop"))  # a valid handle: letters only
    response = Client(raise_request_exception=False).post("/guest/", {"handle": f"Canary {word}"})
    assert response.status_code == 500
    assert_clean(all_logs, word, [])
    assert any(r.name == "django.request" for r in all_logs.records)


def test_a_failure_logged_with_its_exception_as_an_argument_shows_only_the_class(all_logs, canary):
    """Third-party code logs `"...: %s", exc` (daphne: "Exception inside application: %s"): the class only."""
    import logging

    try:
        raise KeyError(canary)
    except KeyError as exc:
        logging.getLogger("daphne.server").error("Exception inside application: %s", exc, exc_info=exc)
    assert_clean(all_logs, canary, [])
    assert "KeyError" in rendered(all_logs.records[-1])
