"""The send writer process (chat/writer.py): a real child process, on the real PostgreSQL test database.

The writer runs beside each server process on PostgreSQL. These tests start one, hand it batches the way the send
queue does, and check what a member would notice: messages stored and numbered, refusals with their reason, the
frames announced in commit order, and a writer that dies costing its senders a retry, never a message.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path

import pytest
from django.db import OperationalError, connection

from accounts.services import participant_for
from chat import broadcast
from chat import writer as writer_module
from chat.models import Message
from chat.protocol import ErrorCode, ProtocolError
from chat.services import SendIntent, post_messages
from chat.writer import Receipt, SendWriter
from rooms.models import Room
from tests.factories import make_room, make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the writer reads what this process has committed
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the send writer process runs on PostgreSQL (SQLite keeps the database thread)",
    ),
]

MARKER = "SAATHI_TEST_WRITER_MARKER"


@pytest.fixture
def writer():
    started = SendWriter()  # its process starts at the first batch, with the settings and environment then
    yield started
    started.stop()


def member():
    return participant_for(user=make_user(), session=None)


def intent(room, who, body, client_id=None):
    return SendIntent(room=room, participant=who, body=body, client_id=client_id or uuid.uuid4())


def write(writer: SendWriter, sends: list[SendIntent]) -> tuple[list, list[tuple[str, dict]]]:
    """What the send queue does with a batch; returns the outcomes and the events the server published."""
    events: list[tuple[str, dict]] = []
    with broadcast.collecting(events):  # this process's publishing, caught instead of sent
        outcomes = writer_module.outcomes(writer.store(sends))
    return outcomes, events


def stores_then_stops_once(sends):
    """A writer that stores its batch, then dies before answering (the first time only)."""
    outcomes = post_messages(sends)
    marker = Path(os.environ[MARKER])
    if not marker.exists():
        marker.write_text("stopped")
        os._exit(1)
    return outcomes


def test_a_server_says_it_is_not_ready_until_its_writer_has_started(writer, client, monkeypatch, caplog):
    # /healthz is what compose, the proxy and the test servers wait for: a process whose writer is still
    # importing Django would hold a member's first messages for seconds.
    monkeypatch.setattr(writer_module, "_WRITER", writer)
    assert client.get("/healthz").json() == {"status": "ok"}  # a process that never starts a writer
    with writer._lock, caplog.at_level(logging.INFO):  # the start waits for the lock: no race with "starting"
        writer.start_in_background()
        response = client.get("/healthz")
        assert (response.status_code, response.json()) == (503, {"status": "starting"})
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == []  # expected, not an error
    deadline = time.monotonic() + 60
    while writer.starting() and time.monotonic() < deadline:
        time.sleep(0.05)
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    outcomes, _ = write(writer, [intent(make_room(), member(), "first")])  # and the started writer stores
    assert outcomes == [Receipt(created=True, own_text=None)]


def test_a_batch_is_stored_in_the_writer_and_its_frames_announced_in_order(writer):
    first, second = make_room(), make_room()
    ana, ben = member(), member()
    sends = [intent(first, ana, "a1"), intent(second, ben, "b1"), intent(first, ben, "a2")]
    outcomes, events = write(writer, sends)
    assert outcomes == [Receipt(created=True, own_text=None)] * 3
    assert list(Message.objects.filter(room=first).values_list("seq", "body", "handle")) == [
        (1, "a1", ana.handle),
        (2, "a2", ben.handle),
    ]
    assert [(group, event["seq"]) for group, event in events] == [
        (broadcast.room_group(first.slug), 1),
        (broadcast.room_group(second.slug), 1),
        (broadcast.room_group(first.slug), 2),
    ]
    peers_copy, own_copy = json.loads(events[0][1]["text"]), json.loads(events[0][1]["own"])
    assert (peers_copy["body"], peers_copy["handle"], peers_copy["id"]) == ("a1", ana.handle, 1)
    assert own_copy["client_id"] == str(sends[0].client_id) and "client_id" not in peers_copy


def test_a_refusal_reaches_its_sender_with_its_reason_and_the_rest_of_the_batch_is_stored(writer):
    room, locked = make_room(), make_room()
    Room.objects.filter(pk=locked.pk).update(locked=True)
    ana = member()
    sends = [intent(locked, ana, "not now"), intent(room, ana, "hello")]
    outcomes, events = write(writer, sends)
    assert isinstance(outcomes[0], ProtocolError)
    assert (outcomes[0].code, outcomes[0].client_id) == (ErrorCode.LOCKED, str(sends[0].client_id))
    assert outcomes[1] == Receipt(created=True, own_text=None)
    assert list(Message.objects.values_list("body", flat=True)) == ["hello"]
    assert len(events) == 1


def test_a_retry_of_a_stored_message_gets_the_authors_copy_back_not_a_second_message(writer):
    room, ana = make_room(), member()
    cid = uuid.uuid4()
    write(writer, [intent(room, ana, "once", cid)])
    outcomes, events = write(writer, [intent(room, ana, "once", cid)])
    assert outcomes[0].created is False
    copy = json.loads(outcomes[0].own_copy_text())
    assert (copy["body"], copy["client_id"], copy["id"]) == ("once", str(cid), 1)
    assert events == [] and Message.objects.count() == 1


def test_a_writer_that_dies_after_storing_costs_its_senders_a_retry_and_no_message_is_lost_or_doubled(
    writer, settings, tmp_path, monkeypatch
):
    settings.SAATHI_SEND_STORE = "tests.integration.test_send_writer.stores_then_stops_once"
    monkeypatch.setenv(MARKER, str(tmp_path / "stopped"))  # the writer inherits the environment at its start
    room, ana = make_room(), member()
    sends = [intent(room, ana, "said before the crash"), intent(room, ana, "and this")]
    with pytest.raises(OperationalError):  # the senders hear `unavailable`, and retry with the same ids
        write(writer, sends)
    assert Message.objects.filter(room=room).count() == 2  # stored before the writer died
    outcomes, _ = write(writer, sends)  # a new writer answers the retry
    assert [outcome.created for outcome in outcomes] == [False, False]
    assert [json.loads(o.own_copy_text())["id"] for o in outcomes] == [1, 2]
    outcomes, events = write(writer, [intent(room, ana, "after")])
    assert outcomes[0].created and [event["seq"] for _, event in events] == [3]  # no number skipped


def test_a_stopping_server_lets_its_writer_finish_and_exit_on_its_own(writer):
    room, ana = make_room(), member()
    write(writer, [intent(room, ana, "before closing")])
    process = writer._process
    writer.stop()
    assert process.returncode == 0  # it saw its socket close and left (closing its connection), not killed
    assert Message.objects.filter(room=room).count() == 1
