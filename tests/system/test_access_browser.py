"""Cross-site WebSocket hijacking, tried by a real browser: an attacker's page on another loopback origin
opens a socket to Saathi while the victim's session cookie sits in the same browser. It must be refused at
the handshake, with no frame delivered; the same script on Saathi's own page must get in (the control that
proves the cookie was there to steal).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.system.conftest import CHROMIUM_ARGS, Server
from tests.system.helpers import SESSION_COOKIE, guest_cookie

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(180)]


# Opens the socket and records everything that happens to it; resolves when it closes (or after 8 s).
PROBE = """
(target) => new Promise((resolve) => {
  const seen = {opened: false, frames: [], closed: null};
  const ws = new WebSocket(target);
  ws.onopen = () => { seen.opened = true; };
  ws.onmessage = (event) => {
    seen.frames.push(event.data);
    if (seen.frames.length === 1) setTimeout(() => ws.close(), 500);  // let the join finish first
  };
  ws.onclose = (event) => { seen.closed = event.code; resolve(seen); };
  setTimeout(() => resolve(seen), 8000);
})
"""


@pytest.fixture
def attacker_site() -> Iterator[Callable[[str], str]]:
    """Factory: attacker_site(host) -> base URL of a plain page served from `host` on a free port."""
    servers: list[ThreadingHTTPServer] = []

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>Totally unrelated</title><p>nothing to see</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    def start(host: str) -> str:
        bind = "127.0.0.1" if host == "localhost" else host
        server = ThreadingHTTPServer((bind, 0), Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://{host}:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_loopback_origin_cannot_open_a_socket_with_the_victims_cookies(
    chromium_path: str, start_servers: Callable[..., list[Server]], live_room: Callable[..., Any], attacker_site
) -> None:
    slug = live_room().slug
    (saathi,) = start_servers(1)
    victim_session = guest_cookie(saathi.url, handle="Victim Person").split("=", 1)[1]
    saathi_hosts = {"127.0.0.1": saathi.url, "localhost": f"http://localhost:{saathi.port}"}
    attacks = [  # (where the victim uses Saathi, where the attacker's page is)
        ("127.0.0.1", attacker_site("127.0.0.1")),  # the same host on another port: cookies ignore ports
        ("127.0.0.1", attacker_site("127.0.0.2")),  # a second loopback address
        ("localhost", attacker_site("localhost")),  # the victim uses http://localhost:PORT
    ]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            for victim_host, attacker_url in attacks:
                base = saathi_hosts[victim_host]
                target = base.replace("http://", "ws://") + f"/ws/rooms/{slug}/"
                context = browser.new_context()
                context.add_cookies([{"name": SESSION_COOKIE, "value": victim_session, "url": base}])
                page = context.new_page()
                page.set_default_timeout(15_000)

                page.goto(attacker_url + "/")
                attack = page.evaluate(PROBE, target)
                assert attack["opened"] is False and attack["frames"] == [], (attacker_url, attack)
                assert attack["closed"] == 1006, attack  # the handshake itself failed (HTTP 403)

                page.goto(base + "/rooms/")  # the control: Saathi's own page, same browser, same cookie
                own = page.evaluate(PROBE, target)
                assert own["opened"] is True, (base, own)
                welcome = json.loads(own["frames"][0])
                assert welcome["type"] == "welcome" and welcome["you"]["handle"] == "Victim Person"
                context.close()
        finally:
            browser.close()
    log = saathi.log_text()
    assert "Traceback" not in log, log[-4000:]
