"""A real browser (Debian's Chromium through Playwright) against a real daphne, Redis and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.system.conftest import Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Request, WebSocket

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(120)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ROOM = "open-recovery-circle"  # made by `manage.py seed_demo`
HOSTILE = "<b>x</b><img src=x onerror=alert(1)>"
TIMEOUT_MS = 15_000  # two cores, shared with other engineers' runs


def join_from_home(page: Page, server: Server, room_name: str = "Open Recovery Circle") -> str:
    """Home page -> "Join an open meeting as a guest" -> the meeting list -> Join. Return the guest's handle."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    try:
        page.goto("/")
        page.get_by_role("button", name="Join an open meeting as a guest").click()
        page.wait_for_url("**/rooms/")
        page.locator("li.room-card", has_text=room_name).get_by_role("link", name="Join").click()
        page.wait_for_url(f"**/rooms/{ROOM}/")
        state = page.locator("#connection-state")
        expect(state).to_contain_text("Connected as", timeout=TIMEOUT_MS)
    except (PlaywrightError, AssertionError) as exc:
        body = page.locator("body").inner_text(timeout=2000)[:800] if not page.is_closed() else ""
        raise AssertionError(
            f"joining from the home page failed at {page.url}: {exc}\n--- page ---\n{body}"
            f"\n--- server log ---\n{server.log_text()[-3000:]}"
        ) from exc
    return str(state.inner_text()).removeprefix("Connected as ").strip()


def test_two_guests_meet_in_an_open_room_and_see_each_other_as_plain_text(
    chromium_path: str, demo_rooms: None, daphne_server: Server, chromium: Browser
) -> None:
    from playwright.sync_api import expect

    server = daphne_server
    requested: list[str] = []
    dialogs: list[str] = []
    csp_violations: list[str] = []
    desktop_ctx = chromium.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    phone_ctx = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
        base_url=server.url,
    )  # fmt: skip

    def on_request(request: Request) -> None:
        requested.append(request.url)

    def on_websocket(socket: WebSocket) -> None:
        requested.append(socket.url)

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            csp_violations.append(message.text)

    try:
        pages = []
        for ctx in (desktop_ctx, phone_ctx):
            ctx.set_default_timeout(TIMEOUT_MS)
            ctx.on("request", on_request)
            page = ctx.new_page()
            page.on("websocket", on_websocket)
            page.on("dialog", on_dialog)
            page.on("console", on_console)
            pages.append(page)
        desktop, phone = pages

        desktop_handle = join_from_home(desktop, server)
        # Quick exit is the first stop for Tab on a freshly loaded room page.
        desktop.keyboard.press("Tab")
        assert desktop.evaluate("document.activeElement.id") == "quick-exit"
        phone_handle = join_from_home(phone, server)
        assert desktop_handle != phone_handle
        for page in pages:
            expect(page.locator("#presence-count")).to_have_text("2")

        # Desktop to phone.
        greeting = "Hello from the desktop. Day 12 for me today."
        desktop.fill("#composer-input", greeting)
        desktop.keyboard.press("Enter")
        phone_copy = phone.locator("#messages .message", has_text=greeting)
        expect(phone_copy.locator(".body")).to_have_text(greeting)
        expect(phone_copy.locator(".handle")).to_have_text(desktop_handle)

        # Phone to desktop: markup in a message is shown as the characters typed, never run or rendered.
        phone.fill("#composer-input", HOSTILE)
        phone.get_by_role("button", name="Send").click()
        desktop_copy = desktop.locator("#messages .message", has_text="onerror")
        expect(desktop_copy.locator(".handle")).to_have_text(phone_handle)
        expect(desktop_copy.locator(".body")).to_have_text(HOSTILE)
        assert desktop_copy.locator(".body").inner_text() == HOSTILE  # exactly the characters typed
        phone.fill("#composer-input", "Thanks for sharing. I'm glad you're here.")
        phone.keyboard.press("Enter")
        expect(desktop.locator("#messages .message")).to_have_count(3)
        expect(phone.locator("#messages .message")).to_have_count(3)
        for page in pages:
            assert page.locator("#messages img, #messages b, #messages script").count() == 0
            assert page.locator("#unsent li").count() == 0  # every send was acknowledged
        desktop.wait_for_timeout(300)  # an onerror would have fired by now
        assert dialogs == []

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for page in pages:  # the whole page, from the top, with no focus ring from the last keystroke
            page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        desktop.screenshot(path=str(SCREENSHOTS / "room.png"), full_page=True)
        phone.screenshot(path=str(SCREENSHOTS / "room-phone.png"), full_page=True)

        # Esc twice leaves for the neutral page, and Back doesn't bring the meeting back.
        desktop.locator("#composer-input").focus()
        desktop.keyboard.press("Escape")
        desktop.keyboard.press("Escape")
        desktop.wait_for_url("**/weather/")
        desktop.go_back()
        assert urlsplit(desktop.url).path != f"/rooms/{ROOM}/"
        expect(phone.locator("#presence-count")).to_have_text("1")  # the other guest sees them gone

        # Nothing left the site: every page request and socket went to the server's own origin.
        own = {("http", "127.0.0.1", server.port), ("ws", "127.0.0.1", server.port)}
        foreign = [
            url for url in requested if (urlsplit(url).scheme, urlsplit(url).hostname, urlsplit(url).port) not in own
        ]
        assert foreign == [], f"requests to third parties: {foreign}"
        assert any(url.endswith("/static/saathi/room.js") for url in requested)
        assert any(url.startswith("ws://") for url in requested)
        assert csp_violations == []
    finally:
        desktop_ctx.close()
        phone_ctx.close()


def test_after_a_long_outage_the_page_retries_within_seconds_and_at_once_when_the_network_is_back(
    chromium_path: str, demo_rooms: None, daphne_server: Server, chromium: Browser
) -> None:
    """A phone in a tunnel: the delay between tries stays short, and coming back online reconnects at once."""
    from playwright.sync_api import expect

    server = daphne_server
    ctx = chromium.new_context(base_url=server.url)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        join_from_home(page, server)
        state = page.locator("#connection-state")

        def watch(seconds: float) -> list[int]:
            """The delays the page announces ("Reconnecting in N s") over this many seconds."""
            seen: list[int] = []
            for _ in range(int(seconds * 10)):
                match = re.search(r"Reconnecting in (\d+) s", state.inner_text())
                if match and (not seen or int(match.group(1)) != seen[-1]):
                    seen.append(int(match.group(1)))
                page.wait_for_timeout(100)
            return seen

        server.kill()  # the meeting's server is gone for a while: every try fails
        delays = watch(25)
        assert delays, "the page never said it was reconnecting"
        assert max(delays) <= 12, f"a browser waited too long between tries: {delays}"
        assert max(delays) >= 4, f"the delay should grow while the server is away: {delays}"

        ctx.set_offline(True)  # the phone loses its network too; the server comes back meanwhile
        server.start()
        for _ in range(300):  # a try made while offline fails and announces its next, long, delay
            match = re.search(r"Reconnecting in (\d+) s", state.inner_text())
            if match and int(match.group(1)) >= 5:
                break
            page.wait_for_timeout(100)
        else:
            raise AssertionError(f"no long delay announced while offline: {state.inner_text()!r}")
        ctx.set_offline(False)  # the browser fires `online`: the page must not wait out that delay
        expect(state).to_contain_text("Connected as", timeout=2_500)
    finally:
        ctx.close()
