"""The staff pages: members and guests get 403; staff see handles and messages, never accounts."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from moderation.models import AuditEntry, Flag
from tests.factories import make_room, make_user, staff_client
from tests.integration.test_moderation_helpers import post

pytestmark = pytest.mark.django_db

CRISIS = "I want to kill myself tonight, I have the pills ready"


def client_for(who: str) -> Client:
    client = Client()
    if who == "guest":
        client.post("/guest/", {})
    elif who in ("member", Role.CHAIR.value, Role.FAMILY.value):
        client.force_login(make_user(roles=() if who == "member" else (who,)))
    elif who != "anonymous":
        client = staff_client(make_user(roles=(who,)))
    return client


def test_staff_who_have_not_passed_the_second_factor_are_refused(flag):
    client = Client()
    client.force_login(make_user(roles=(Role.COUNSELLOR.value,)))
    response = client.get(f"/moderation/flags/{flag.pk}/")
    assert response.status_code in (302, 403) and "pills ready" not in response.content.decode()


@pytest.fixture
def flag() -> Flag:
    post(make_room(), make_user(handle="Asha Rain", email="asha@example.org"), CRISIS)
    return Flag.objects.get()


@pytest.mark.parametrize("who", ["guest", "member", Role.CHAIR.value, Role.FAMILY.value])
def test_members_and_guests_cannot_read_flags_reports_or_the_audit_log(who, flag):
    client = client_for(who)
    for path in ("/moderation/", f"/moderation/flags/{flag.pk}/", "/moderation/reports/", "/moderation/audit/"):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/moderation/flags/{flag.pk}/ack/").status_code == 403
    assert Flag.objects.get().state == Flag.State.OPEN


def test_signed_out_visitors_are_sent_to_sign_in(flag):
    response = Client().get("/moderation/")
    assert response.status_code == 302 and "/accounts/sign-in/" in response["Location"]


def test_a_counsellor_sees_the_flag_with_its_context_and_history_but_no_account_details(flag):
    client = client_for(Role.COUNSELLOR.value)
    page = client.get(f"/moderation/flags/{flag.pk}/").content.decode()
    assert "Asha Rain" in page and "pills ready" in page and "flag_raised" in page
    assert "asha@example.org" not in page and f"u:{flag.author_key}" not in page
    assert client.get("/moderation/").status_code == 200
    assert client.get("/moderation/audit/").status_code == 200
    assert client.get("/moderation/reports/").status_code == 403  # reports are the moderators' queue


def test_a_counsellor_acknowledges_and_resolves_from_the_page(flag):
    client = client_for(Role.COUNSELLOR.value)
    client.post(f"/moderation/flags/{flag.pk}/ack/")
    client.post(f"/moderation/flags/{flag.pk}/resolve/", {"outcome": "referred", "note": "Gave Tele-MANAS."})
    flag.refresh_from_db()
    assert flag.state == Flag.State.RESOLVED and flag.outcome == "referred"
    assert AuditEntry.objects.filter(flag=flag, action="flag_resolved").exists()


def test_a_moderator_reads_reports_and_the_audit_log_but_cannot_resolve_flags(flag):
    client = client_for(Role.MODERATOR.value)
    assert client.get("/moderation/reports/").status_code == 200
    assert client.get("/moderation/audit/").status_code == 200
    assert client.post(f"/moderation/flags/{flag.pk}/resolve/", {"outcome": "supported"}).status_code == 403
