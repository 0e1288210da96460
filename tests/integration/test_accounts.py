"""Sign-up, guest passes, sign-in throttling, the staff second factor, export and erasure."""

from __future__ import annotations

import json

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.handles import skeleton
from accounts.models import GuestPass, RetiredHandle, Role, User
from accounts.services import participant_for
from chat.models import Message
from moderation.models import AuditEntry, Restriction
from tests.factories import PASSWORD, make_room, make_user

pytestmark = pytest.mark.django_db


def sign_up(client: Client, **overrides: str):
    data = {
        "username": "quiet_river",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "handle": "Quiet River",
        "kind": "recovery",
        "email": "",
    }
    data.update(overrides)
    return client.post("/accounts/sign-up/", data)


def test_sign_up_creates_a_member_known_to_peers_only_by_handle():
    client = Client()
    response = sign_up(client, email="private@example.org")
    assert response.status_code == 302
    user = User.objects.get(username="quiet_river")
    assert user.handle == "Quiet River" and user.email == "private@example.org"
    assert set(user.groups.values_list("name", flat=True)) == {"member"}
    assert user.password.startswith("argon2") or user.password.startswith("md5")  # test hasher is faster


def test_passwords_are_hashed_with_argon2_in_production(settings):
    from django.contrib.auth.hashers import get_hasher

    assert settings.PASSWORD_HASHERS[-2] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert get_hasher("argon2").algorithm == "argon2"


def test_family_sign_up_joins_the_family_role():
    sign_up(Client(), username="for_my_son", handle="Hopeful Parent", kind="family")
    assert set(User.objects.get(username="for_my_son").groups.values_list("name", flat=True)) == {"family"}


@pytest.mark.parametrize(
    ("handle", "sentence"),
    [("Moderator Ravi", "staff"), ("me@mail.com", "email"), ("x", "3 to 24"), ("Quiet\u202eRiver", "invisible")],
)
def test_a_refused_handle_says_why(handle, sentence):
    response = sign_up(Client(), handle=handle)
    assert response.status_code == 400
    assert sentence in response.content.decode()


def test_a_look_alike_of_a_taken_handle_is_refused():
    make_user(handle="Quiet River")
    response = sign_up(Client(), handle="QUIET  RlVER")
    assert response.status_code == 400 and "taken" in response.content.decode()


def test_guest_joins_in_one_click_with_a_suggested_handle_and_may_change_it():
    client = Client()
    response = client.post("/guest/", {"next": "/rooms/"})
    assert response.status_code == 302 and response["Location"] == "/rooms/"
    guest = GuestPass.objects.get()
    assert len(guest.handle) >= 3
    client.post("/guest/", {"handle": "Morning Tide"})
    guest.refresh_from_db()
    assert guest.handle == "Morning Tide" and GuestPass.objects.count() == 1


def test_a_guest_cannot_take_a_members_handle():
    make_user(handle="Quiet River")
    response = Client().post("/guest/", {"handle": "quiet river"})
    assert response.status_code == 400


def test_guest_redirect_never_leaves_the_site():
    response = Client().post("/guest/", {"next": "https://evil.example/"})
    assert response["Location"] == "/rooms/"


def test_repeated_wrong_passwords_lock_the_account_with_a_generic_message(settings):
    make_user()
    user = User.objects.get()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/sign-in/", {"username": user.username, "password": "wrong-password"})
    locked = client.post("/accounts/sign-in/", {"username": user.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many attempts" in locked.content.decode()
    assert user.username not in locked.content.decode()


def test_staff_act_as_members_until_they_pass_the_second_factor():
    moderator = make_user(roles=(Role.MODERATOR.value,))
    client = Client()
    assert client.post("/accounts/sign-in/", {"username": moderator.username, "password": PASSWORD})[
        "Location"
    ].startswith("/accounts/second-factor/")
    assert Role.MODERATOR not in participant_for(user=moderator, session=client.session).roles
    assert client.get("/admin/")["Location"].startswith("/accounts/second-factor/")

    page = client.get("/accounts/second-factor/")
    assert "Key:" in page.content.decode()  # first time: set up the authenticator app
    device = TOTPDevice.objects.get(user=moderator)
    assert client.post("/accounts/second-factor/", {"token": "000000"}).status_code == 400
    device.refresh_from_db()
    device.throttle_reset()  # a wrong code slows further tries down; the test doesn't wait for that
    token = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert client.post("/accounts/second-factor/", {"token": token, "next": "/rooms/"})["Location"] == "/rooms/"
    assert Role.MODERATOR in participant_for(user=moderator, session=client.session).roles


def test_members_never_see_the_second_factor_step():
    member = make_user()
    response = Client().post("/accounts/sign-in/", {"username": member.username, "password": PASSWORD})
    assert response["Location"] == "/rooms/"


def test_a_member_can_download_their_own_data():
    from accounts.identity import Participant
    from chat.services import check_post_message

    user = make_user(email="me@example.org")
    room = make_room()
    who = participant_for(user=user, session=None)
    assert isinstance(who, Participant)
    import uuid

    check_post_message(room=room, participant=who, body="my words", client_id=uuid.uuid4())
    client = Client()
    client.force_login(user)
    response = client.get("/accounts/me/export/")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["account"]["email"] == "me@example.org" and data["account"]["handle"] == user.handle
    assert [m["body"] for m in data["messages"]] == ["my words"]


def test_deleting_an_account_leaves_nothing_linked_but_a_pseudonymous_audit_entry():
    import uuid

    from chat.services import check_post_message

    user = make_user(handle="Leaving Soon")
    other = make_user()
    room = make_room()
    key = f"u:{user.pk}"
    check_post_message(
        room=room,
        participant=participant_for(user=user, session=None),
        body="something private",
        client_id=uuid.uuid4(),
    )
    check_post_message(
        room=room, participant=participant_for(user=other, session=None), body="reply", client_id=uuid.uuid4()
    )
    Restriction.objects.create(kind=Restriction.Kind.MUTE, author_key=key, room=room, created_by_key="u:0")
    AuditEntry.objects.create(
        actor_key="u:0", actor_handle="Mod", action="mute", target_key=key, target_handle="Leaving Soon"
    )
    client = Client()
    client.force_login(user)
    assert client.post("/accounts/me/delete/", {"password": "wrong", "confirm": "on"}).status_code == 400
    assert client.post("/accounts/me/delete/", {"password": PASSWORD, "confirm": "on"}).status_code == 302

    assert not User.objects.filter(pk=user.pk).exists()
    assert not Message.objects.filter(author_key=key).exists()
    assert list(Message.objects.filter(room=room).values_list("body", flat=True)) == ["[removed]", "reply"]
    assert not Message.objects.filter(body__contains="something private").exists()
    assert not Restriction.objects.filter(author_key=key).exists()
    assert not AuditEntry.objects.filter(target_key=key).exists()
    assert not AuditEntry.objects.filter(target_handle="Leaving Soon").exists()
    assert AuditEntry.objects.filter(action="account_erased").count() == 1
    assert RetiredHandle.objects.filter(handle_key=skeleton("Leaving Soon")).exists()
    assert not [s for s in Session.objects.all() if str(s.get_decoded().get("_auth_user_id")) == str(user.pk)]
    # Nobody inherits the handle.
    assert Client().post("/guest/", {"handle": "Leaving Soon"}).status_code == 400


def test_leaving_as_a_guest_frees_the_handle():
    client = Client()
    client.post("/guest/", {"handle": "Passing Through"})
    client.post("/accounts/guest/leave/")
    assert not GuestPass.objects.exists()
    assert Client().post("/guest/", {"handle": "Passing Through"}).status_code == 302
