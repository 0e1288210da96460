"""Log a failure without its message: exception text can quote what a member wrote."""

from __future__ import annotations

import logging
import traceback


def log_failure(logger: logging.Logger, where: str, exc: BaseException) -> None:
    """Log the exception's class and stack, never str(exc)."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("%s failed: %s\n%s", where, type(exc).__name__, stack)
