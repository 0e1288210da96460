"""Meetings in a real browser (Debian's Chromium) against real daphne, Redis and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.system.conftest import BASE_DIR, Server
from tests.system.test_browser_room import TIMEOUT_MS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(180)]


def meeting_starting_in(seconds: int, **extra: Any):
    """A daily meeting (Kolkata) whose doors are already open and which starts `seconds` from now."""
    from django.utils import timezone

    from rooms.schedule import get_zone
    from tests.meeting_factories import make_meeting

    start = (timezone.now() + timedelta(seconds=seconds)).astimezone(get_zone("Asia/Kolkata")).replace(microsecond=0)
    return make_meeting(start=start.time(), dtstart=start.date() - timedelta(days=1), tz="Asia/Kolkata", **extra)


def run_worker_once(server: Server) -> None:
    """Run `manage.py run_worker --once` (only the meetings step) as the servers' sibling process."""
    env = {**server.env, "SAATHI_WORKER_STEPS": "rooms.services.open_and_close_meetings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "run_worker", "--once"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def with_cookie(ctx: BrowserContext, server: Server, cookie_header: str) -> None:
    name, _, value = cookie_header.partition("=")
    ctx.add_cookies([{"name": name, "value": value, "url": server.url}])


def test_the_directory_shows_a_meeting_in_the_browsers_time_zone(
    chromium_path: str,
    live_db: dict,
    daphne_server: Server,
    request: pytest.FixtureRequest,
) -> None:
    from datetime import time, timedelta

    from django.utils import timezone

    from rooms.schedule import format_for_viewer, next_occurrence, occurrences_between
    from tests.meeting_factories import make_meeting

    meeting = make_meeting(slug="sys-ny-evening", tz="America/New_York", start=time(19, 0))
    now = timezone.now()
    occurrence = next_occurrence(meeting.schedule(), now)  # the one under way, if it is (as the card shows)
    assert occurrence is not None
    in_sao_paulo = format_for_viewer(occurrence.starts_at, "America/Sao_Paulo")
    # The room page's "coming" dates are the starts still ahead: not the meeting under way (00:00-01:00 UTC).
    first_coming = occurrences_between(meeting.schedule(), now, now + timedelta(days=2))[0]
    coming_in_sao_paulo = format_for_viewer(first_coming.starts_at, "America/Sao_Paulo")
    browser: Browser = request.getfixturevalue("chromium")
    from playwright.sync_api import expect

    ctx = browser.new_context(base_url=daphne_server.url, timezone_id="America/Sao_Paulo")
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.goto("/meetings/")
        page.wait_for_url("**/meetings/?tz=America%2FSao_Paulo")
        expect(page.locator("#viewer-zone")).to_contain_text("Sao Paulo time (UTC-03:00)")
        card = page.locator("li.meeting-entry[data-slug='sys-ny-evening']")
        expect(card).to_contain_text(in_sao_paulo)
        card.get_by_role("link", name=meeting.room.name).click()
        expect(page.locator("#meets")).to_contain_text("Every day at 19:00 New York time")
        expect(page.locator("#coming")).to_contain_text(coming_in_sao_paulo)
        if occurrence.doors_open_at > timezone.now():
            expect(page.locator("#join")).to_be_disabled()
        assert any(c["name"] == "saathi_tz" and c["value"] == "America/Sao_Paulo" for c in ctx.cookies())
    finally:
        ctx.close()


def test_a_guest_waits_in_the_waiting_room_shares_once_it_opens_and_the_chair_calls_them(
    chromium_path: str,
    live_db: dict,
    daphne_server: Server,
    request: pytest.FixtureRequest,
) -> None:
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from tests.factories import PASSWORD, make_user
    from tests.system.helpers import member_cookie

    server = daphne_server
    meeting = meeting_starting_in(25, format_text="Welcome. We open with a moment of silence.")
    chair = make_user(handle="Priya Banyan")
    # The servers run with production hashers, not the tests' fast one.
    chair.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    chair.save(update_fields=["password"])
    meeting.room.chairs.add(chair)
    chair_cookie = member_cookie(server, username=chair.username, password=PASSWORD)
    run_worker_once(server)  # doors open: the worker has run once
    starts_at = datetime.fromisoformat(meeting.room.meeting.state_at(timezone.now()).occurrence.starts_at.isoformat())

    browser: Browser = request.getfixturevalue("chromium")
    from playwright.sync_api import expect

    guest_ctx = browser.new_context(base_url=server.url, timezone_id="Asia/Kolkata")
    chair_ctx = browser.new_context(base_url=server.url, timezone_id="Asia/Kolkata")
    with_cookie(chair_ctx, server, chair_cookie)
    try:
        for ctx in (guest_ctx, chair_ctx):
            ctx.set_default_timeout(TIMEOUT_MS)
        guest = guest_ctx.new_page()
        guest.goto(f"/rooms/{meeting.room.slug}/")
        guest.get_by_role("button", name="Join as a guest").click()
        expect(guest.locator("#connection-state")).to_contain_text("Connected as")
        handle = guest.locator("#connection-state").inner_text().removeprefix("Connected as ").strip()
        expect(guest.locator("#meeting-state")).to_contain_text("Doors are open. The meeting starts in")
        expect(guest.locator("#readings-text")).to_contain_text("moment of silence")
        expect(guest.locator("#send-button")).to_be_disabled()

        chair_page = chair_ctx.new_page()
        chair_page.goto(f"/rooms/{meeting.room.slug}/")
        expect(chair_page.locator("#connection-state")).to_contain_text("Connected as Priya Banyan")

        # The meeting starts: the page moves on by the clock; the worker's notice arrives through Redis.
        wait = (starts_at - timezone.now()).total_seconds() + 1
        guest.wait_for_timeout(max(0, wait) * 1000)
        run_worker_once(server)  # a real worker process, publishing through Redis with the servers' key
        expect(guest.locator("#messages")).to_contain_text("The meeting has started.")
        expect(guest.locator("#send-button")).to_be_enabled()
        guest.locator("#composer-input").fill("Hi, I'm new. Glad to be here.")
        guest.locator("#composer-input").press("Enter")
        expect(chair_page.locator("#messages")).to_contain_text("Hi, I'm new. Glad to be here.")

        guest.get_by_role("button", name="Raise hand").click()
        expect(chair_page.locator("#queue")).to_contain_text(handle)
        chair_page.get_by_role("button", name="Call next").click()
        expect(guest.locator("#speaking")).to_contain_text("It's your turn to share.")
        expect(chair_page.locator("#speaking")).to_contain_text(f"Speaking now: {handle}")
        expect(chair_page.locator("#queue li")).to_have_count(0)
    except Exception as exc:
        raise AssertionError(f"{exc}\n--- server log ---\n{server.log_text()[-3000:]}") from exc
    finally:
        guest_ctx.close()
        chair_ctx.close()
