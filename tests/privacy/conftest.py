"""Privacy tests: canaries, every log record, and a scan of every table for a person's traces."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.consumers.conftest import hub_cleanup  # noqa: F401  (re-exported fixture)


@pytest.fixture
def canary() -> str:
    """A string that must never turn up in a log: unique per test, easy to grep, plausible as a message."""
    return f"canary-{secrets.token_hex(8)}"


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every log record of every logger at DEBUG, whatever the settings' levels say."""
    import config.asgi  # noqa: F401  (its first import runs django.setup(), which reconfigures logging)

    touched = []
    for name in ["", *logging.root.manager.loggerDict]:
        logger = logging.getLogger(name)
        touched.append((logger, logger.level, logger.disabled))
        logger.disabled = False
        if logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        for logger, level, disabled in touched:
            logger.setLevel(level)
            logger.disabled = disabled


def rendered(record: logging.LogRecord) -> str:
    """Return a record as the settings' formatter would write it: message, exception and stack."""
    from django.conf import settings

    fmt = settings.LOGGING["formatters"]["plain"]
    formatter_class = fmt.get("()") or logging.Formatter
    if isinstance(formatter_class, str):
        from django.utils.module_loading import import_string

        formatter_class = import_string(formatter_class)
    formatter = formatter_class(fmt.get("format"))
    return formatter.format(record)


# --- A scan of every table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    table: str
    pk: Any
    column: str
    what: str

    def __str__(self) -> str:
        return f"{self.table} #{self.pk} .{self.column}: {self.what}"


def traces_of(*, user_id: int, username: str, email: str, handle: str, allow: set[tuple[Any, ...]]) -> list[Trace]:
    """Scan every row of every model (M2M tables included) for anything that still links to this person.

    A trace is a foreign key to their account, a generic relation to it (content type + object id), or
    their username, email, handle or author key `u:<id>` in any text or JSON column. Session data is
    decoded first (it is stored encoded). `allow` lists what the policy keeps on purpose: (table, column) for a
    whole column, (table, column, pk) for one row.
    """
    from django.apps import apps
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.models import Session
    from django.db import models

    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    user_type = ContentType.objects.get_for_model(user_model)
    needles = [
        ("their author key", re.compile(rf"(?<![\w:])u:{user_id}(?!\d)")),
        ("their username", re.compile(rf"(?<![\w]){re.escape(username)}(?![\w])", re.IGNORECASE)),
        ("their handle", re.compile(re.escape(handle), re.IGNORECASE)),
    ]
    if email:
        needles.append(("their email", re.compile(re.escape(email), re.IGNORECASE)))
    found: list[Trace] = []
    for model in apps.get_models(include_auto_created=True):
        table = model._meta.db_table
        fields = model._meta.concrete_fields
        for row in model._default_manager.all().iterator():
            for f in fields:
                if (table, f.column) in allow or (table, f.column, row.pk) in allow:
                    continue
                value = f.value_from_object(row)
                if value is None or value == "":
                    continue
                if f.is_relation and f.related_model is user_model:
                    if value == user_id:
                        found.append(Trace(table, row.pk, f.column, "a foreign key to their account"))
                    continue
                if isinstance(f, models.ForeignKey | models.OneToOneField) and f.related_model is ContentType:
                    object_id = getattr(row, "object_id", None)
                    if value == user_type.pk and str(object_id) == str(user_id):
                        found.append(Trace(table, row.pk, "object_id", "a generic relation to their account"))
                    continue
                if model is Session and f.name == "session_data":
                    text = json.dumps(row.get_decoded(), default=str)
                elif isinstance(value, str):
                    text = value
                elif isinstance(value, dict | list):
                    text = json.dumps(value, ensure_ascii=False)
                else:
                    continue
                for what, needle in needles:
                    if needle.search(text):
                        found.append(Trace(table, row.pk, f.column, what))
    return found
