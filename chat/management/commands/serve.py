"""Serve Saathi with daphne, with the WebSocket limits and keep-alive this project needs."""

from __future__ import annotations

import os
from typing import Any

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand

from chat.server import LeanServer
from chat.writer import send_writer, uses_writer_process


class SaathiCommandLine(CommandLineInterface):  # type: ignore[misc]  # daphne has no type hints
    server_class = LeanServer  # less memory per idle WebSocket (chat/server.py)


class Command(BaseCommand):
    help = "Run daphne on config.asgi with explicit frame/message size limits and pings."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--proxy-headers", action="store_true", help="Trust X-Forwarded-For from the proxy.")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = [
            "-b", options["host"], "-p", str(options["port"]),
            "--websocket-max-message-size", str(settings.SAATHI_WEBSOCKET_MAX_MESSAGE_BYTES),
            "--websocket-max-frame-size", str(settings.SAATHI_WEBSOCKET_MAX_MESSAGE_BYTES),
            "--ping-interval", str(settings.SAATHI_PING_INTERVAL),
            "--ping-timeout", str(settings.SAATHI_PING_TIMEOUT),
            "--websocket_connect_timeout", "10",
            "--application-close-timeout", "5",
            "--no-server-name",
            # daphne's access log pairs client IPs with paths; Saathi keeps no such log.
            "--access-log", os.devnull,
        ]  # fmt: skip
        if options["proxy_headers"]:
            argv.append("--proxy-headers")
        argv.append("config.asgi:application")
        if uses_writer_process():
            send_writer().start_in_background()  # ready before the first send, not started by it
        SaathiCommandLine().run(argv)
