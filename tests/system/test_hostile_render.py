"""The 500 worst stored payloads, rendered in the real room page in Chromium: nothing runs (issue #6).

Each payload tries to set a canary (`window.__pwned`, `document.title = 'PWNED'`, `alert()`), through script
tags, event-handler attributes, `javascript:` URLs, SVG/MathML, CSS, entities, templates and polyglots, plus
bidi tricks and zalgo. They are stored through the real service (`check_post_message`), then a guest opens
the room page served by daphne, and the test checks that no canary is set, no dialog opens, no CSP
violation is reported, no element was created inside the message list, and every message reads as the
exact text that was stored.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.fuzz import strategies as hs
from tests.system.conftest import CHROMIUM_ARGS
from tests.system.helpers import SESSION_COOKIE, guest_cookie

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(180)]

PAYLOADS = 500

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def worst_payloads(count: int = PAYLOADS) -> list[str]:
    """Return `count` distinct hostile bodies: every injection, trick and zalgo, in several wrappings."""
    bases = hs.INJECTIONS + hs.BIDI_TRICKS + hs.ZALGO
    wrappers = [
        "{}",
        "hi {} bye",
        "https://example.org/?q={}",
        "{}\n{}",
        "<p>{}</p>",
        "www.example.org {}",
        "\u202e{}\u202c",
        "{{{{ {} }}}}",
        "&amp;{}&#x3c;",
        "`{}`",
    ]
    out: list[str] = []
    for wrapper in wrappers:
        for base in bases:
            body = wrapper.replace("{}", base)[:2000]
            if body not in out:
                out.append(body)
            if len(out) == count:
                return out
    return out


def _store(room, bodies: list[str]) -> dict[int, str]:
    """Store each body as a member's message through the real service; return {seq: stored body} of visible ones."""
    from accounts.services import participant_for
    from chat.models import Message
    from chat.protocol import MAX_BODY_CHARS, clean_text
    from chat.services import check_post_message
    from tests.factories import make_user

    author = participant_for(user=make_user(), session=None)
    for body in bodies:
        cleaned = clean_text(body, field="message", max_chars=MAX_BODY_CHARS)  # what the socket would store
        check_post_message(room=room, participant=author, body=cleaned, client_id=uuid.uuid4())
    rows = Message.objects.filter(room=room, state=Message.State.VISIBLE).values_list("seq", "body")
    return dict(rows)


def test_the_worst_stored_payloads_render_as_inert_text(
    chromium_path: str, start_servers, live_room, settings, tmp_path: Path
):
    from playwright.sync_api import sync_playwright

    settings.SAATHI_SEND_RATE = "100000/minute"  # the test process stores 500 messages in a second
    # A welcome carrying all 500 would pass daphne's 64 KiB limit (see the BUG test in test_fuzz_socket.py), so
    # the page gets a short history and then, as it does after a `resync` notice, resumes from id 0.
    server = start_servers(1, SAATHI_HISTORY_ON_JOIN="10")[0]
    room = live_room()
    stored = _store(room, worst_payloads())
    assert len(stored) >= PAYLOADS * 0.9, f"only {len(stored)} of {PAYLOADS} payloads are visible"
    cookie_value = guest_cookie(server.url).split("=", 1)[1]

    dialogs: list[str] = []
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": SESSION_COOKIE, "value": cookie_value, "url": server.url}])
            context.add_init_script(RECORD_VIOLATIONS)
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{server.url}/rooms/{room.slug}/")
            page.wait_for_function("() => document.querySelectorAll('#messages li.message').length > 0")
            page.evaluate("() => window.saathiRoom.socket().send(JSON.stringify({type: 'resume', after: 0}))")
            page.wait_for_function(
                "n => document.querySelectorAll('#messages li.message').length >= n", arg=len(stored), timeout=60_000
            )
            page.wait_for_timeout(1500)  # give any smuggled timer, onerror or onload a moment to fire
            rendered = page.evaluate(
                """() => Array.from(document.querySelectorAll('#messages li.message'),
                                    li => [Number(li.dataset.id), li.querySelector('.body').textContent])"""
            )
            canaries = page.evaluate("() => ({pwned: typeof window.__pwned, title: document.title})")
            elements = page.evaluate(
                """() => Array.from(document.querySelectorAll(
                    '#messages script, #messages img, #messages svg, #messages iframe, #messages object, '
                    + '#messages embed, #messages math, #messages style, #messages a, #messages video, '
                    + '#messages form, #messages input, #messages details, #messages template, #messages base'),
                    el => el.outerHTML.slice(0, 120))"""
            )
            violations = page.evaluate("() => window.__csp")
            page.screenshot(path=str(tmp_path / "hostile-render.png"))
        finally:
            browser.close()

    assert canaries == {"pwned": "undefined", "title": canaries["title"]} and "PWNED" not in canaries["title"]
    assert dialogs == []
    assert violations == []
    assert [line for line in console if "Content Security Policy" in line or "Refused to" in line] == []
    assert elements == []
    assert dict(rendered) == stored  # every message reads as exactly the text that was stored
