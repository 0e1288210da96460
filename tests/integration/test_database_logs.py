"""PostgreSQL's own log never quotes what a member wrote, even when a statement fails."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction

from chat.models import Message
from tests.conftest import IN_CI
from tests.factories import make_room

POSTGRES_LOG = Path("/var/log/postgresql/postgresql-15-main.log")

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failed_insert_is_logged_by_postgresql_without_the_message_text():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's server log only exists on PostgreSQL")
    if not POSTGRES_LOG.exists():
        if IN_CI:
            pytest.fail(f"{POSTGRES_LOG} is missing")
        pytest.skip(f"{POSTGRES_LOG} is not on this machine")
    canary = f"canary-{uuid.uuid4().hex}"
    room = make_room()
    client_id = uuid.uuid4()
    Message.objects.create(room=room, seq=1, author_key="g:1", handle="Someone", body="first", client_id=client_id)
    offset = POSTGRES_LOG.stat().st_size
    with pytest.raises(IntegrityError), transaction.atomic():
        # The same client_id again: PostgreSQL logs the failing statement (log_min_error_statement=error).
        Message.objects.create(room=room, seq=2, author_key="g:1", handle="Someone", body=canary, client_id=client_id)
    with POSTGRES_LOG.open("rb") as log:
        log.seek(offset)
        written = log.read().decode("utf-8", "replace")
    assert "duplicate key" in written  # the failure was logged: the check below is not vacuous
    assert canary not in written
