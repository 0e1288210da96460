"""When an account is erased: restrictions go, audit entries keep only a pseudonym."""

from __future__ import annotations

from django.db import transaction

from moderation.models import AuditEntry, Restriction


@transaction.atomic
def do_pseudonymise_author(*, author_key: str, handle: str, pseudonym: str) -> None:
    Restriction.objects.filter(author_key=author_key).delete()
    Restriction.objects.filter(created_by_key=author_key).update(created_by_key=pseudonym)
    AuditEntry.objects.filter(actor_key=author_key).update(actor_key=pseudonym, actor_handle="[erased]")
    AuditEntry.objects.filter(target_key=author_key).update(target_key=pseudonym, target_handle="[erased]")
    AuditEntry.objects.create(actor_key=pseudonym, actor_handle="[erased]", action="account_erased")
