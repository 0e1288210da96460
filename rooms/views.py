from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.services import participant_for
from rooms.models import Access, Room
from rooms.services import check_room_access, room_state, rooms_listed_for


@require_GET
def room_list(request: HttpRequest) -> HttpResponse:
    participant = participant_for(user=request.user, session=request.session)
    rooms = [(room, check_room_access(room, participant)) for room in rooms_listed_for(participant)]
    return render(request, "rooms/list.html", {"rooms": rooms, "participant": participant})


@require_GET
def room_page(request: HttpRequest, slug: str) -> HttpResponse:
    room = get_object_or_404(Room, slug=slug)
    participant = participant_for(user=request.user, session=request.session)
    decision = check_room_access(room, participant)
    if room.access == Access.PRIVATE and not decision.allowed:
        raise Http404("No such meeting.")  # a private room's existence is itself private
    return render(
        request,
        "rooms/room.html",
        {"room": room, "participant": participant, "decision": decision, "state": room_state(room)},
        status=200 if decision.allowed else 403,
    )


@require_POST
def attest_woman(request: HttpRequest, slug: str) -> HttpResponse:
    """Self-attestation for women's circles: nothing is checked or asked beyond the person's word."""
    if not request.user.is_authenticated:
        return redirect("accounts:sign_in")
    if request.POST.get("confirm") == "yes":
        request.user.attests_woman = True  # type: ignore[union-attr]
        request.user.save(update_fields=["attests_woman"])  # type: ignore[union-attr]
    return redirect("rooms:room", slug=slug)
