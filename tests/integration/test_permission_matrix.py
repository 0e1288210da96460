"""Who may read or do what over HTTP: the whole matrix as one table (the socket half is in
tests/consumers/test_socket_permission_matrix.py; docs/access-control.md explains both).

A cell is what the person in that row gets from the column's page or form:

- 200 / 403 / 404   the status (404: a private room you may not know about looks like no room at all)
- "done"   a form (POST) did its work and redirected back (the side effect is checked below the table)
- "sign-in"   redirected to the sign-in page (HTTP's counterpart of close code 4401)
- "2FA"   a staff account that hasn't passed its TOTP check is sent to the second-factor page first
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Role, User
from moderation import services as moderation
from moderation.models import Flag, PrivateRoomInvite, Report, Restriction
from rooms.models import Access
from tests.factories import make_room, make_user, staff_client
from tests.integration.test_moderation_helpers import post, who

pytestmark = pytest.mark.django_db

CRISIS = "I want to kill myself tonight, I have the pills ready"
DONE, SIGN_IN, TWO_FACTOR = "done", "sign-in", "2FA"

# fmt: off
COLUMNS = ("open", "closed", "family", "women", "private",
           "dashboard", "flag page", "ack flag", "resolve flag", "reports", "close report", "audit log")
MATRIX: dict[str, tuple[Any, ...]] = {
    #                    open closed family women private dashboard  flag       ack        resolve    reports    close      audit
    "anonymous":         (403, 403,  403,   403,  404,    SIGN_IN,   SIGN_IN,   SIGN_IN,   SIGN_IN,   SIGN_IN,   SIGN_IN,   SIGN_IN),
    "guest":             (200, 403,  403,   403,  404,    403,       403,       403,       403,       403,       403,       403),
    "member":            (200, 200,  403,   403,  200,    403,       403,       403,       403,       403,       403,       403),
    "family member":     (200, 403,  200,   403,  404,    403,       403,       403,       403,       403,       403,       403),
    "chair":             (200, 200,  403,   403,  404,    403,       403,       403,       403,       403,       403,       403),
    "moderator":         (200, 200,  200,   200,  404,    200,       200,       403,       403,       200,       DONE,      200),
    "counsellor":        (200, 200,  200,   200,  200,    200,       200,       DONE,      DONE,      403,       403,       200),
    "admin":             (200, 200,  200,   200,  404,    200,       200,       DONE,      DONE,      200,       DONE,      200),
    "staff without 2FA": (200, 200,  403,   403,  404,    TWO_FACTOR, TWO_FACTOR, TWO_FACTOR, TWO_FACTOR, TWO_FACTOR, TWO_FACTOR, TWO_FACTOR),
    "banned":            (403, 403,  403,   403,  404,    403,       403,       403,       403,       403,       403,       403),
}
# fmt: on
# The rows are the same people as on the socket side: "member" is the one the private room was opened for,
# "counsellor" opened it, "chair" chairs the open room, "banned" is under a site-wide ban, "staff without
# 2FA" is a moderator before the TOTP check. Room pages a person may not enter answer 403 with a reason
# (sign in, join as a guest, confirm for a women's circle), except private rooms: 404, like no room.


@pytest.fixture
def world() -> dict[str, Any]:
    people: dict[str, User] = {
        "member": make_user(),
        "family member": make_user(kind=User.Kind.FAMILY),
        "chair": make_user(),
        "moderator": make_user(roles=(Role.MODERATOR.value,)),
        "counsellor": make_user(roles=(Role.COUNSELLOR.value,)),
        "admin": make_user(roles=(Role.ADMIN.value,)),
        "staff without 2FA": make_user(roles=(Role.MODERATOR.value,)),
        "banned": make_user(),
    }
    rooms = {
        "open": make_room(),
        "closed": make_room(access=Access.CLOSED),
        "family": make_room(access=Access.FAMILY),
        "women": make_room(access=Access.WOMEN),
        "private": make_room(access=Access.PRIVATE),
    }
    rooms["open"].chairs.add(people["chair"])
    rooms["private"].chairs.add(people["counsellor"])
    PrivateRoomInvite.objects.create(room=rooms["private"], member_key=f"u:{people['member'].pk}")
    Restriction.objects.create(kind=Restriction.Kind.BAN, author_key=f"u:{people['banned'].pk}", created_by_key="u:0")
    author = make_user()
    for name, room in rooms.items():
        post(room, author, f"secret words in the {name} room")
    reported = post(rooms["open"], author, "something unkind")
    post(rooms["open"], make_user(), CRISIS)
    report = moderation.check_report(room=rooms["open"], reporter=who(make_user()), message_id=reported.seq, reason="x")
    return {"people": people, "rooms": rooms, "flag": Flag.objects.get(), "report": report}


def _client(role: str, world: dict[str, Any]) -> Client:
    if role == "anonymous":
        return Client()
    if role == "guest":
        client = Client()
        assert client.post("/guest/", {}).status_code == 302
        return client
    user = world["people"][role]
    if role in ("moderator", "counsellor", "admin"):
        return staff_client(user)
    client = Client()
    client.force_login(user)
    return client


def _outcome(response: Any) -> Any:
    if response.status_code != 302:
        return response.status_code
    location = response["Location"]
    if location.startswith("/accounts/sign-in/"):
        return SIGN_IN
    if location.startswith("/accounts/second-factor/"):
        return TWO_FACTOR
    assert location.startswith("/moderation/"), location
    return DONE


@pytest.mark.parametrize("role", list(MATRIX))
def test_every_role_against_every_page_and_form(role, world):
    client = _client(role, world)
    flag, report = world["flag"], world["report"]
    actual: dict[str, Any] = {}
    for name, room in world["rooms"].items():
        response = client.get(f"/rooms/{room.slug}/")
        actual[name] = response.status_code
        if response.status_code != 200:  # a refusal shows nothing said in the room
            assert b"secret words" not in response.content, (role, name)
    requests = {
        "dashboard": ("get", "/moderation/", {}),
        "flag page": ("get", f"/moderation/flags/{flag.pk}/", {}),
        "ack flag": ("post", f"/moderation/flags/{flag.pk}/ack/", {}),
        "resolve flag": ("post", f"/moderation/flags/{flag.pk}/resolve/", {"outcome": "supported"}),
        "reports": ("get", "/moderation/reports/", {}),
        "close report": ("post", f"/moderation/reports/{report.pk}/close/", {"state": "dismissed"}),
        "audit log": ("get", "/moderation/audit/", {}),
    }
    for column, (method, path, data) in requests.items():
        response = getattr(client, method)(path, data)
        actual[column] = _outcome(response)
        if response.status_code == 403:
            assert b"pills ready" not in response.content and b"something unkind" not in response.content
    expected = dict(zip(COLUMNS, MATRIX[role], strict=True))
    wrong = {c: (expected[c], actual[c]) for c in COLUMNS if actual[c] != expected[c]}
    assert not wrong, f"{role}: (expected, got) per column: {wrong}"

    # What the forms changed: only what the table says "done" for.
    flag.refresh_from_db()
    report.refresh_from_db()
    assert (flag.state == Flag.State.RESOLVED) == (expected["resolve flag"] == DONE)
    assert (report.state == Report.State.DISMISSED) == (expected["close report"] == DONE)


def test_the_invited_guest_enters_their_private_room_and_nobody_else_learns_it_exists(world):
    room = world["rooms"]["private"]
    guest = Client()
    guest.post("/guest/", {})
    assert guest.get(f"/rooms/{room.slug}/").status_code == 404
    from accounts.services import guest_pass_for_session

    session = guest.session
    PrivateRoomInvite.objects.filter(room=room).update(member_key=f"g:{guest_pass_for_session(session).pk}")
    assert guest.get(f"/rooms/{room.slug}/").status_code == 200
    assert Client().get("/rooms/support-no-such-room/").status_code == 404  # the same answer as for no room
    listed = _client("moderator", world).get("/rooms/").content.decode()
    assert room.slug not in listed  # never listed, not even to staff
