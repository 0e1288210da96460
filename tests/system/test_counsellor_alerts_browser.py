"""The on-call counsellor's dashboard in a real browser (Debian's Chromium) against a real daphne, Redis and
PostgreSQL: a member's crisis message shows up live as a flag, with a sound and a browser notification that
names its level; an ordinary message shows and plays nothing.

The sound and the notification are watched, not faked: an init script wraps `Notification` and
`OscillatorNode.prototype.start` so every call is recorded in `window.__alerts`, then runs as it would anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import async_to_sync

from tests.system.conftest import Server
from tests.system.helpers import SESSION_COOKIE, member_cookie, staff_cookie
from tests.system.test_browser_room import TIMEOUT_MS
from tests.system.test_crisis_path import CRISIS, people

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(120)]

ORDINARY = "Ninety days today. The mornings are still the hardest part."
QUIET_MS = 1000  # how long an ordinary message gets to (wrongly) page: a flag arrives well within this

# Runs before the page's own scripts. The real constructor and the real start() still run: a Notification that
# the browser refuses to show is recorded with shown=false, and a sound on a suspended AudioContext is recorded
# with its state, so neither a missing call nor a silent one passes.
RECORD_ALERTS = """
(() => {
  const alerts = (window.__alerts = []);
  const RealNotification = window.Notification;
  window.Notification = class extends RealNotification {
    constructor(title, options) {
      super(title, options);
      const seen = {kind: "notification", title: String(title), body: String((options || {}).body || ""), shown: false};
      this.addEventListener("show", () => { seen.shown = true; });
      alerts.push(seen);
    }
  };
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    alerts.push({kind: "sound", state: this.context.state});
    return start.apply(this, args);
  };
})();
"""


def signed_in_context(browser: Browser, server: Server, cookie: str) -> BrowserContext:
    """Open a browser context on the server that carries a session cookie taken over HTTP."""
    ctx = browser.new_context(base_url=server.url)
    ctx.set_default_timeout(TIMEOUT_MS)
    name, _, value = cookie.partition("=")
    assert name == SESSION_COOKIE
    ctx.add_cookies([{"name": name, "value": value, "url": server.url}])
    return ctx


def alerts_since(page: Page, start: int) -> list[dict[str, Any]]:
    """Return the alerts the page has asked for since the `start`-th."""
    return list(page.evaluate("(start) => window.__alerts.slice(start)", start))


def wait_for_alerts(
    page: Page, kind: str, start: int, *, shown: bool = False, timeout_ms: int = 5_000
) -> list[dict[str, Any]]:
    """Wait for an alert of this kind since `start` (one the browser showed, if `shown`); return all of that kind."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "([kind, start, shown]) => window.__alerts.slice(start).some((a) => a.kind === kind && (a.shown || !shown))",
            arg=[kind, start, shown],
            timeout=timeout_ms,
        )
    except PlaywrightTimeout:
        what = f"{kind} shown by the browser" if shown else kind
        raise AssertionError(f"no {what} within {timeout_ms} ms of the flag: {alerts_since(page, start)}") from None
    return [a for a in alerts_since(page, start) if a["kind"] == kind]


def post(member: Page, text: str) -> None:
    """Send a message from the room page and wait until the server has acknowledged it."""
    from playwright.sync_api import expect

    member.fill("#composer-input", text)
    member.keyboard.press("Enter")
    expect(member.locator("#messages .message .body", has_text=text)).to_have_count(1)
    expect(member.locator("#unsent li")).to_have_count(0)


def test_a_crisis_message_pages_the_on_call_counsellors_open_dashboard_with_sound_and_a_notification(
    chromium_path: str,
    live_room: Any,
    start_servers: Callable[..., list[Server]],
    request: pytest.FixtureRequest,
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from playwright.sync_api import expect

    from tests.factories import PASSWORD

    # Staff pass TOTP here, as in production. The servers' own Redis prefix (tests/system/conftest.py) keeps other
    # runs' events off this counsellor's socket: /ws/moderation/ is closed by an event it cannot decrypt.
    (server,) = start_servers(1)
    room, member, (counsellor, _backup) = async_to_sync(people)(live_room)  # Kabir C is the primary on call
    device = TOTPDevice.objects.create(user=counsellor, name="phone", confirmed=True)
    member_session = member_cookie(server, username=member.username, password=PASSWORD)
    counsellor_session = staff_cookie(server, username=counsellor.username, password=PASSWORD, device_key=device.key)

    browser: Browser = request.getfixturevalue("chromium")  # last: no ORM calls while Playwright is up
    desk_ctx = signed_in_context(browser, server, counsellor_session)
    member_ctx = signed_in_context(browser, server, member_session)
    try:
        desk_ctx.grant_permissions(["notifications"], origin=server.url)
        desk_ctx.add_init_script(RECORD_ALERTS)
        desk = desk_ctx.new_page()
        desk.goto("/moderation/")
        expect(desk.locator("#mod-connection")).to_have_text("Live")
        expect(desk.locator("#on-call")).to_contain_text("Kabir C")
        expect(desk.locator("#flags")).to_have_text("No live flags.")
        desk.get_by_role("button", name="Turn on sound and notifications").click()
        expect(desk.locator("#mod-alerts")).to_have_text("Sound and notifications are on")
        before = int(desk.evaluate("window.__alerts.length"))  # the click's own test beep is not a page

        room_page = member_ctx.new_page()
        room_page.goto(f"/rooms/{room.slug}/")
        expect(room_page.locator("#connection-state")).to_contain_text("Connected as Asha Rain")

        post(room_page, ORDINARY)
        desk.wait_for_timeout(QUIET_MS)
        assert alerts_since(desk, before) == [], "an ordinary message made the dashboard sound or notify"
        expect(desk.locator("#flags")).to_have_text("No live flags.")

        post(room_page, CRISIS)
        flag = desk.locator("#flags li.flag")
        expect(flag).to_have_count(1)
        expect(flag).to_contain_text("imminent")
        expect(flag).to_contain_text(f"Asha Rain in {room.name}")
        expect(flag.locator(".excerpt")).to_contain_text("pills")
        expect(desk.locator("[data-count=imminent]")).to_have_text("1")

        sounds = [a["state"] for a in wait_for_alerts(desk, "sound", before)]
        assert set(sounds) == {"running"}, f"the flag's sound was not audible (AudioContext states {sounds})"
        notifications = wait_for_alerts(desk, "notification", before)
        assert [(n["title"], n["body"]) for n in notifications] == [
            ("Saathi: imminent flag", f"Crisis flag (imminent): Asha Rain in {room.name}")
        ]
        wait_for_alerts(desk, "notification", before, shown=True)  # the browser's `show` event
        assert member.username not in str(notifications)  # a handle, never the account
    except Exception as exc:
        raise AssertionError(f"{exc}\n--- server log ---\n{server.log_text()[-3000:]}") from exc
    finally:
        desk_ctx.close()
        member_ctx.close()
