"""Group commit: sends that waited together are stored together, and each sender still gets its own answer."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import participant_for
from chat.models import Message
from chat.protocol import ErrorCode, ProtocolError
from chat.services import PostResult, SendIntent, check_post_message, post_messages
from moderation import services as moderation
from moderation.models import Flag
from rooms.models import Room
from tests.factories import make_room, make_user

pytestmark = pytest.mark.django_db

CRISIS = "I want to kill myself tonight, I have the pills ready"


def member():
    return participant_for(user=make_user(), session=None)


def intent(room, who, body="hello"):
    return SendIntent(room=room, participant=who, body=body, client_id=uuid.uuid4())


def test_a_batch_across_rooms_numbers_each_rooms_messages_in_arrival_order():
    first, second = make_room(), make_room()
    ana, ben = member(), member()
    sends = [
        intent(first, ana, "a1"),
        intent(second, ben, "b1"),
        intent(first, ben, "a2"),
        intent(first, ana, "a3"),
        intent(second, ana, "b2"),
    ]
    outcomes = post_messages(sends)
    assert [(o.message.room_id, o.message.seq, o.message.body) for o in outcomes] == [
        (first.pk, 1, "a1"),
        (second.pk, 1, "b1"),
        (first.pk, 2, "a2"),
        (first.pk, 3, "a3"),
        (second.pk, 2, "b2"),
    ]
    assert all(o.created for o in outcomes)
    assert list(Message.objects.filter(room=first).values_list("seq", "body")) == [(1, "a1"), (2, "a2"), (3, "a3")]
    assert Room.objects.get(pk=first.pk).last_seq == 3  # the next send goes on from here
    assert check_post_message(room=first, participant=ana, body="a4", client_id=uuid.uuid4()).message.seq == 4


def test_a_refused_send_in_a_batch_gets_its_own_refusal_and_the_others_are_stored():
    room = make_room()
    muted, talker = member(), member()
    moderation.do_mute(
        room=room,
        actor=moderation.Participant(handle="Mod", author_key="u:0", roles=frozenset({"moderator"})),
        target=moderation.Target(author_key=muted.author_key, handle=muted.handle),
        minutes=5,
    )
    outcomes = post_messages([intent(room, talker, "one"), intent(room, muted, "not me"), intent(room, talker, "two")])
    assert isinstance(outcomes[1], ProtocolError) and outcomes[1].code == ErrorCode.MUTED
    assert [o.message.seq for o in (outcomes[0], outcomes[2])] == [1, 2]  # no number skipped for the refusal
    assert list(Message.objects.filter(room=room).values_list("body", flat=True)) == ["one", "two"]


def test_a_retry_in_a_batch_gets_the_stored_copy_and_the_new_sends_are_still_stored():
    room = make_room()
    ana, ben = member(), member()
    earlier = check_post_message(room=room, participant=ana, body="first try", client_id=(cid := uuid.uuid4()))
    retry = SendIntent(room=room, participant=ana, body="first try", client_id=cid)
    outcomes = post_messages([intent(room, ben, "new one"), retry, intent(room, ana, "new two")])
    assert outcomes[1] == PostResult(message=earlier.message, created=False)
    assert outcomes[0].created and outcomes[2].created
    assert sorted(Message.objects.filter(room=room).values_list("seq", flat=True)) == [1, 2, 3]
    assert Message.objects.filter(room=room, client_id=cid).count() == 1


def test_the_same_client_id_twice_in_one_batch_is_stored_once():
    room = make_room()
    ana = member()
    send = intent(room, ana, "sent twice in a hurry")
    outcomes = post_messages([send, send])
    assert outcomes[0].created and not outcomes[1].created
    assert outcomes[0].message.pk == outcomes[1].message.pk
    assert Message.objects.filter(room=room).count() == 1


def test_a_crisis_message_in_a_batch_raises_its_flag_and_the_ordinary_ones_do_not():
    room = make_room()
    ana, ben = member(), member()
    outcomes = post_messages([intent(room, ben, "good morning all"), intent(room, ana, CRISIS)])
    flags = list(Flag.objects.all())
    assert len(flags) == 1 and flags[0].message_id == outcomes[1].message.pk


def test_a_batch_costs_the_same_statements_whatever_its_size(settings):
    settings.SAATHI_SEND_RATE = "1000/second"  # the per-person limit is not what this counts
    rooms = [make_room() for _ in range(3)]
    people = [member() for _ in range(4)]

    def statements(count: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            outcomes = post_messages([intent(rooms[n % 3], people[n % 4], f"hello {n}") for n in range(count)])
        assert all(o.created for o in outcomes)
        return len(captured)

    # Rules, numbers and rows: a fixed few statements per batch, not one per message or per room.
    first = statements(3)
    assert statements(3) == statements(40)
    if connection.vendor == "postgresql":  # the rooms' rules are known now: checked by the write, not read
        assert statements(5) == first - 1
    sent = 3 + 3 + 40 + (5 if connection.vendor == "postgresql" else 0)
    assert sum(Room.objects.get(pk=room.pk).last_seq for room in rooms) == sent == Message.objects.count()


def test_a_send_to_a_room_deleted_under_an_open_socket_is_refused_not_lost_in_a_crash():
    room, gone = make_room(), make_room()
    ana = member()
    Room.objects.filter(pk=gone.pk).delete()
    outcomes = post_messages([intent(gone, ana, "anyone?"), intent(room, ana, "still here")])
    assert isinstance(outcomes[0], ProtocolError) and outcomes[0].code == ErrorCode.NOT_FOUND
    assert outcomes[1].created


def test_the_rate_limit_counts_each_send_of_a_batch_and_only_that_persons(settings):
    from chat import ratelimit

    ratelimit.reset()
    settings.SAATHI_SEND_RATE = "3/minute"
    room = make_room()
    hasty, calm = member(), member()
    outcomes = post_messages([intent(room, hasty, f"quick {n}") for n in range(5)] + [intent(room, calm, "hello")])
    assert [o.created for o in outcomes[:3]] == [True, True, True]
    assert all(isinstance(o, ProtocolError) and o.code == ErrorCode.RATE_LIMITED for o in outcomes[3:5])
    assert outcomes[5].created  # someone else in the same batch is not held back
    assert [o.message.seq for o in (*outcomes[:3], outcomes[5])] == [1, 2, 3, 4]


def test_a_send_the_rules_refuse_hears_the_rule_and_still_counts_toward_the_rate(settings):
    # The rate is counted while the rules are read, so a refused send counts too; the refusal names the rule.
    from chat import ratelimit

    ratelimit.reset()
    settings.SAATHI_SEND_RATE = "3/minute"
    room = make_room()
    hasty = member()
    Room.objects.filter(pk=room.pk).update(locked=True)
    locked_out = post_messages([intent(room, hasty, f"knock {n}") for n in range(4)])
    assert [o.code for o in locked_out] == [ErrorCode.LOCKED] * 4  # "locked", the reason that helps, not "slow down"
    Room.objects.filter(pk=room.pk).update(locked=False)
    after = post_messages([intent(room, hasty, "open now?")])
    assert isinstance(after[0], ProtocolError) and after[0].code == ErrorCode.RATE_LIMITED
    assert not Message.objects.filter(room=room).exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_batch_is_numbered_and_committed_by_one_write_and_a_retry_still_gets_its_copy():
    # The server's case: no transaction around the batch (PostgreSQL writes it in one statement).
    first, second = make_room(), make_room()
    ana, ben = member(), member()
    sends = [intent(first, ana, "a1"), intent(second, ben, "b1"), intent(first, ben, "a2")]
    with CaptureQueriesContext(connection) as queries:
        outcomes = post_messages(sends)
    assert [(o.message.room_id, o.message.seq, o.created) for o in outcomes] == [
        (first.pk, 1, True),
        (second.pk, 1, True),
        (first.pk, 2, True),
    ]
    if connection.vendor == "postgresql":
        assert len(queries) == 2  # the rooms' rules, then numbering and inserting together
    assert list(Message.objects.filter(room=first).values_list("seq", "body", "handle")) == [
        (1, "a1", ana.handle),
        (2, "a2", ben.handle),
    ]
    assert [o.message.pk for o in outcomes] == [
        Message.objects.get(room=o.message.room_id, seq=o.message.seq).pk for o in outcomes
    ]
    assert (Room.objects.get(pk=first.pk).last_seq, Room.objects.get(pk=second.pk).last_seq) == (2, 1)
    retry = SendIntent(room=first, participant=ana, body="a1", client_id=sends[0].client_id)
    again = post_messages([retry, intent(first, ana, "a3")])
    assert (again[0].created, again[0].message.seq) == (False, 1)  # the stored copy, not a second message
    assert (again[1].created, again[1].message.seq) == (True, 3)  # no number skipped by the failed attempt
    assert Message.objects.filter(room=first).count() == 3


@pytest.mark.django_db(transaction=True)
def test_what_a_member_typed_is_stored_exactly_however_it_is_written():
    # The batch reaches PostgreSQL as one JSON document: quotes, backslashes, escapes, other scripts and emoji
    # must come back as typed, in every message of the batch.
    room, ana = make_room(), member()
    bodies = [
        'she said "day 30" \\o/ and \\n is not a newline',
        "line one\nline two\ttabbed",
        "আজ আমার ৯০ দিন পূর্ণ হলো 🙏",
        '{"json": [1, 2]} </script> \' OR 1=1 --',
        "\\u0041 stays six characters",
    ]
    outcomes = post_messages([intent(room, ana, body) for body in bodies])
    assert [o.message.seq for o in outcomes] == [1, 2, 3, 4, 5]
    assert list(Message.objects.filter(room=room).order_by("seq").values_list("body", flat=True)) == bodies


@pytest.mark.django_db(transaction=True)
def test_a_room_deleted_between_the_rule_check_and_the_write_refuses_only_its_own_sends():
    from chat import services

    room, doomed = make_room(), make_room()
    ana = member()
    sends = [intent(doomed, ana, "into the void"), intent(room, ana, "still here")]
    accepted = [(0, moderation.assess("into the void")), (1, moderation.assess("still here"))]
    rooms = {room.pk: room, doomed.pk: doomed}
    Room.objects.filter(pk=doomed.pk).delete()  # after the rules were read, before the write
    if connection.vendor != "postgresql":  # the transaction path: the batch fails whole, its senders retry
        with pytest.raises((KeyError, IntegrityError)):
            services._store(sends, accepted, rooms, now=timezone.now())
        assert not Message.objects.exists()
        return
    outcomes = services._store(sends, accepted, rooms, now=timezone.now())
    assert isinstance(outcomes[0], ProtocolError) and outcomes[0].code == ErrorCode.NOT_FOUND
    assert outcomes[1].created and outcomes[1].message.seq == 1
    assert list(Message.objects.filter(room=room).values_list("body", flat=True)) == ["still here"]


@pytest.mark.django_db(transaction=True)
def test_two_processes_writing_to_the_same_rooms_at_once_lose_nothing_and_skip_no_number(settings):
    # Each thread has its own database connection, as two server processes do.
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("several server processes share one database only on PostgreSQL")
    settings.SAATHI_SEND_RATE = "100000/second"
    failures: list[BaseException] = []
    rooms = [make_room(), make_room()]
    people = [member() for _ in range(4)]
    refused: list[object] = []

    def writer(who: int) -> None:
        try:
            for n in range(40):
                batch = [intent(rooms[(n + k) % 2], people[(who + k) % 4], f"w{who} {n} {k}") for k in range(3)]
                refused.extend(o for o in post_messages(batch) if isinstance(o, ProtocolError))
        except BaseException as exc:  # a thread's failure would otherwise vanish
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(who,)) for who in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert refused == []
    for room in rooms:
        seqs = list(Message.objects.filter(room=room).values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))
        assert Room.objects.get(pk=room.pk).last_seq == len(seqs)
    assert Message.objects.count() == 2 * 40 * 3


def test_the_benchmarks_store_less_variant_keeps_the_rate_limit_and_stores_nothing(settings):
    # bench/nostore.py is the "persistence and crisis scan off" side of the on/off row: it must skip only
    # those (the database and the scan), so the per-person rate limit refuses exactly as the real store does.
    from bench import nostore
    from chat import ratelimit

    ratelimit.reset()
    settings.SAATHI_SEND_RATE = "3/minute"
    room = make_room()
    hasty, calm = member(), member()
    sends = [intent(room, hasty, f"quick {n}") for n in range(5)] + [intent(room, calm, CRISIS)]
    outcomes = nostore.post_messages(sends)
    assert [isinstance(o, PostResult) for o in outcomes] == [True, True, True, False, False, True]
    assert all(o.code == ErrorCode.RATE_LIMITED and o.client_id == str(s.client_id)
               for o, s in zip(outcomes[3:5], sends[3:5], strict=True))  # fmt: skip
    assert [o.message.seq for o in (*outcomes[:3], outcomes[5])] == [1, 2, 3, 4]
    assert not Message.objects.filter(room=room).exists()  # nothing written
    assert not Flag.objects.exists()  # and nothing scanned: the crisis message raised no flag
