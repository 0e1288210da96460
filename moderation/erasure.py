"""When an account is erased: restrictions go; flags, reports, invites and the audit log keep only a pseudonym."""

from __future__ import annotations

from django.db import transaction

from moderation.models import AuditEntry, Flag, PrivateRoomInvite, Report, Restriction

ERASED_HANDLE = "[erased]"


@transaction.atomic
def do_pseudonymise_author(*, author_key: str, handle: str, pseudonym: str) -> None:
    Restriction.objects.filter(author_key=author_key).delete()
    Restriction.objects.filter(created_by_key=author_key).update(created_by_key=pseudonym)
    AuditEntry.objects.filter(actor_key=author_key).update(actor_key=pseudonym, actor_handle=ERASED_HANDLE)
    AuditEntry.objects.filter(target_key=author_key).update(target_key=pseudonym, target_handle=ERASED_HANDLE)
    # Flag steps name their member by handle only (no key): a handle is unique while its account exists.
    AuditEntry.objects.filter(target_handle=handle).update(target_handle=ERASED_HANDLE)
    # A member's flag stays for the counsellor's follow-up, under the pseudonym; a counsellor's name goes.
    Flag.objects.filter(author_key=author_key).update(author_key=pseudonym, handle=ERASED_HANDLE)
    Flag.objects.filter(owner_key=author_key).update(owner_key=pseudonym, owner_handle=ERASED_HANDLE)
    stamp = f" {handle}] "  # hand-off notes are signed "[<time> <handle>] <note>" (services.do_add_handoff_note)
    for flag in Flag.objects.filter(handoff_note__contains=stamp):
        flag.handoff_note = flag.handoff_note.replace(stamp, f" {ERASED_HANDLE}] ")
        flag.save(update_fields=["handoff_note"])
    Report.objects.filter(reporter_key=author_key).update(reporter_key=pseudonym)
    Report.objects.filter(handled_by_handle=handle).update(handled_by_handle=ERASED_HANDLE)
    PrivateRoomInvite.objects.filter(member_key=author_key).update(member_key=pseudonym)
    AuditEntry.objects.create(actor_key=pseudonym, actor_handle=ERASED_HANDLE, action="account_erased")
