"""The crisis path across real processes: daphne A serves the member, daphne B the counsellors, a third
process runs the worker step; Redis carries the frames, PostgreSQL holds the flag and its audit trail."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from websockets.asyncio.client import connect

from tests.system.conftest import BASE_DIR
from tests.system.helpers import RoomSocket, connect_room, member_cookie

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

CRISIS = "I want to kill myself tonight, I have the pills ready"


async def connect_desk(server, cookie: str) -> RoomSocket:  # type: ignore[no-untyped-def]
    """Open /ws/moderation/ on a server; wait for its welcome."""
    url = server.url.replace("http://", "ws://", 1) + "/ws/moderation/"
    ws = await connect(
        url, origin=server.url, additional_headers={"Cookie": cookie}, open_timeout=10, ping_interval=None
    )
    desk = RoomSocket(ws, url)
    desk.welcome = await desk.frame_of("welcome", 10)
    return desk


def run_worker_step(server, now) -> int:  # type: ignore[no-untyped-def]
    """Run the escalation step once in a separate process (as `run_worker` would), at a chosen `now`."""
    code = (
        "from django.utils.dateparse import parse_datetime; from moderation.services import escalate_due_flags; "
        f"print(escalate_due_flags(now=parse_datetime({now.isoformat()!r})))"
    )
    env = {**server.env, "SAATHI_WORKER_STEPS": "moderation.services.escalate_due_flags"}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


@database_sync_to_async
def people(live_room):  # type: ignore[no-untyped-def]
    from django.contrib.auth.hashers import make_password

    from accounts.models import Role, User
    from moderation.models import RotaShift
    from tests.factories import PASSWORD, make_user

    # The servers don't have the tests' fast hasher: store a hash they can check.
    hashed = make_password(PASSWORD, hasher="pbkdf2_sha256")
    room = live_room()
    member = make_user(handle="Asha Rain")
    User.objects.filter(pk=member.pk).update(password=hashed)
    staff = []
    for handle, position in (("Kabir C", "primary"), ("Leela B", "backup")):
        user = make_user(roles=(Role.COUNSELLOR.value,))
        User.objects.filter(pk=user.pk).update(handle=handle, password=hashed)
        now = timezone.now()
        RotaShift.objects.create(
            user=user, position=position, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=4)
        )
        staff.append(user)
    return room, member, staff


@database_sync_to_async
def flag_and_history(flag_id: int):  # type: ignore[no-untyped-def]
    from moderation.models import AuditEntry, Flag

    flag = Flag.objects.get(pk=flag_id)
    history = list(AuditEntry.objects.filter(flag=flag).order_by("id").values_list("action", "actor_handle", "detail"))
    return flag, history


async def test_a_crisis_message_pages_the_counsellor_on_another_process_and_escalates_to_the_backup(
    start_servers, live_room, redis_url
):
    from tests.factories import PASSWORD

    # Staff sign-in's second factor is tested in tests/integration/test_accounts.py; here it would only add steps.
    a, b = start_servers(2, SAATHI_REQUIRE_STAFF_2FA="false")
    room, member, (primary, backup) = await people(live_room)
    cookies = await asyncio.gather(
        *(
            asyncio.to_thread(member_cookie, server, username=user.username, password=PASSWORD)
            for server, user in ((a, member), (b, primary), (b, backup))
        )
    )
    primary_desk = await connect_desk(b, cookies[1])
    backup_desk = await connect_desk(b, cookies[2])
    asha = await connect_room(a, room.slug, cookies[0])
    try:
        started = time.monotonic()
        await asha.send_message(CRISIS)
        flag = await primary_desk.frame_of("flag", timeout=2, where=lambda f: f["room"] == room.slug)
        assert time.monotonic() - started < 2.0
        assert (flag["level"], flag["handle"], flag["paged"]) == ("imminent", "Asha Rain", True)
        assert member.username not in str(flag)
        support = await asha.frame_of("support", timeout=2)
        assert {h["number"] for h in support["helplines"]} >= {"14416", "988"}
        seen_by_backup = await backup_desk.frame_of("flag", timeout=2, where=lambda f: f["id"] == flag["id"])
        assert seen_by_backup["paged"] is False  # in the queue, but not paged yet

        stored, _ = await flag_and_history(flag["id"])
        assert await asyncio.to_thread(run_worker_step, a, stored.deadline - timedelta(seconds=1)) == 0
        assert await asyncio.to_thread(run_worker_step, a, stored.deadline + timedelta(seconds=1)) == 1
        update = await backup_desk.frame_of("flag_update", timeout=5, where=lambda f: f["id"] == flag["id"])
        assert (update["change"], update["step"], update["paged"]) == ("escalated", "Backup counsellor", True)

        stored, history = await flag_and_history(flag["id"])
        assert stored.step == stored.Step.BACKUP and stored.state == stored.State.OPEN
        assert [(action, who) for action, who, _ in history] == [
            ("flag_raised", "Saathi"),
            ("flag_escalated", "Saathi"),
        ]
        assert history[1][2]["to"] == "Backup counsellor"
    finally:
        for sock in (asha, primary_desk, backup_desk):
            await sock.close()
    for server in (a, b):
        log = server.log_text()
        assert CRISIS not in log and member.username not in log  # never a message body or account in logs
