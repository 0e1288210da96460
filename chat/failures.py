"""Log a failure without its message: exception text can quote what a member wrote."""

from __future__ import annotations

import copy
import logging
import traceback
from collections.abc import Mapping
from typing import Any

STARTING_PROBE = "saathi_starting_probe"  # set on a /healthz request answered "starting" (config/views.py)


def not_a_starting_probe(record: logging.LogRecord) -> bool:
    """Logging filter for django.request: a process still starting answers /healthz 503, which is the expected
    answer (compose and the proxy wait for it), not a server error to page anybody about."""
    return not getattr(getattr(record, "request", None), STARTING_PROBE, False)


def log_failure(logger: logging.Logger, where: str, exc: BaseException) -> None:
    """Log the exception's class and stack, never str(exc)."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("%s failed: %s\n%s", where, type(exc).__name__, stack)


def exception_without_text(exc: BaseException) -> str:
    """Return a traceback (chained causes included) with each exception's class, never its message."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for index, item in enumerate(reversed(chain)):
        if index:
            parts.append("\nwhich led to:\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(f"{type(item).__module__}.{type(item).__qualname__} (message not logged)")
    return "".join(parts)


def _scrub(value: Any) -> Any:
    return f"{type(value).__name__} (message not logged)" if isinstance(value, BaseException) else value


class RedactingFormatter(logging.Formatter):
    """The one log format: exceptions appear as class and stack only, wherever the record came from.

    Django logs a failed request with its exception, daphne logs "Exception inside application: %s" with the
    exception as an argument; either way the exception's text (which can quote a message, a handle or a
    database row) would reach the log. This formatter drops it for every logger, ours or not.
    """

    def format(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)  # other handlers (and caches) keep their own view of the record
        if isinstance(record.args, Mapping):
            record.args = {key: _scrub(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_scrub(value) for value in record.args)
        if isinstance(record.msg, BaseException):
            record.msg = _scrub(record.msg)
        record.exc_text = None
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        exc = ei[1]
        if exc is None:
            return ""
        return exception_without_text(exc)
