from __future__ import annotations

from collections.abc import Callable
from datetime import date

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.services import participant_for
from rooms import directory
from rooms.feeds import calendar_for, meeting_guide_rows
from rooms.meetingguide import SPEC_TYPES
from rooms.models import Access, Meeting, MeetingQuerySet, Programme, Room, SavedMeeting
from rooms.schedule import ScheduleError, format_for_viewer, get_zone, zone_label
from rooms.services import (
    check_room_access,
    do_save_meeting,
    do_set_sobriety_date,
    holiday_dates,
    milestone_for,
    room_state,
    rooms_listed_for,
    runs_floor,
)


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
    now = timezone.now()
    tz = viewer_tz(request)
    milestone = (
        milestone_for(request.user, now=now, tz=tz)  # type: ignore[arg-type]
        if request.user.is_authenticated and decision.allowed
        else None
    )
    return render(
        request,
        "rooms/room.html",
        {
            "room": room,
            "participant": participant,
            "decision": decision,
            "state": room_state(room, now=now),
            "runs_floor": participant is not None and runs_floor(room, participant),
            "milestone": milestone,  # private: shown only to this member, on their own button
            "opens_at_words": format_for_viewer(decision.opens_at, tz) if decision.opens_at else "",
        },
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


# --- The meeting directory, meeting pages, feeds and calendars --------------------------------------------

TZ_COOKIE = "saathi_tz"


def viewer_tz(request: HttpRequest) -> str:
    """Return the viewer's zone: ?tz=, else the cookie the browser set (Intl API), else the default."""
    for candidate in (request.GET.get("tz"), request.COOKIES.get(TZ_COOKIE)):
        if candidate:
            try:
                get_zone(candidate)
            except ScheduleError:
                continue
            return candidate
    return str(settings.SAATHI_DEFAULT_TZ)


def _listed_meetings(request: HttpRequest) -> MeetingQuerySet:
    participant = participant_for(user=request.user, session=request.session)
    return (
        Meeting.objects.public()
        .with_schedule()
        .visible_to(
            is_family=bool(participant and participant.is_family),
            is_staff=bool(participant and participant.is_staff_role),
        )
    )


def _room_url(request: HttpRequest) -> Callable[[Meeting], str]:
    return lambda meeting: request.build_absolute_uri(reverse("rooms:room", args=[meeting.room.slug]))


@require_GET
def meeting_directory(request: HttpRequest) -> HttpResponse:
    tz = viewer_tz(request)
    meetings = _listed_meetings(request)
    chosen = {key: request.GET.get(key, "") for key in ("programme", "type", "language", "time")}
    if chosen["programme"]:
        meetings = meetings.filter(room__programme=chosen["programme"])
    if chosen["language"]:
        meetings = meetings.filter(language=chosen["language"])
    listed = list(meetings)
    if chosen["type"]:
        listed = [m for m in listed if chosen["type"] in m.types]  # JSON containment is not portable to SQLite
    now_on, upcoming = directory.directory(
        listed,
        now=timezone.now(),
        viewer_tz=tz,
        holidays=holiday_dates(),
        days_ahead=settings.SAATHI_DIRECTORY_DAYS_AHEAD,
        time_of_day=chosen["time"] if chosen["time"] in directory.TIMES_OF_DAY else "",
    )
    all_types = sorted({code for m in Meeting.objects.public() for code in m.types})
    response = render(
        request,
        "meetings/directory.html",
        {
            "now_on": now_on,
            "upcoming": upcoming,
            "viewer_tz": tz,
            "zone_label": zone_label(tz, timezone.now()),
            "chosen": chosen,
            "programmes": Programme.choices,
            "type_codes": [(code, SPEC_TYPES.get(code, code)) for code in all_types],
            "languages": sorted({m.language for m in Meeting.objects.public() if m.language}),
            "language_names": directory.LANGUAGES,
            "times_of_day": list(directory.TIMES_OF_DAY),
        },
    )
    return response


@require_GET
def meeting_page(request: HttpRequest, slug: str) -> HttpResponse:
    meeting = get_object_or_404(_listed_meetings(request), slug=slug)
    tz = viewer_tz(request)
    now = timezone.now()
    holidays = holiday_dates()
    entry = directory.entry_for(meeting, now=now, viewer_tz=tz, holidays=holidays)
    saved = (
        request.user.is_authenticated and SavedMeeting.objects.filter(user_id=request.user.pk, meeting=meeting).exists()  # type: ignore[misc]
    )
    return render(
        request,
        "meetings/meeting.html",
        {
            "meeting": meeting,
            "room": meeting.room,
            "entry": entry,
            "viewer_tz": tz,
            "viewer_zone_label": zone_label(tz, now),
            "days": directory.days_words(meeting),
            "own_time": directory.meeting_zone_words(meeting, now=now),
            "coming": directory.coming_dates(meeting, now=now, viewer_tz=tz, holidays=holidays),
            "formats": directory.format_names(meeting),
            "who_for": directory.WHO_FOR.get(meeting.room.access, ""),
            "doors_open_at": format_for_viewer(entry.occurrence.doors_open_at, tz) if entry.occurrence else "",
            "saved": saved,
            "exceptions": [e for e in meeting.exceptions.all() if e.local_date >= now.date()],
        },
    )


@require_POST
def save_meeting(request: HttpRequest, slug: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"{reverse('accounts:sign_in')}?next={reverse('meetings:meeting', args=[slug])}")
    meeting = get_object_or_404(_listed_meetings(request), slug=slug)
    do_save_meeting(user=request.user, meeting=meeting, saved=request.POST.get("saved") == "yes")  # type: ignore[arg-type]
    return redirect("meetings:meeting", slug=slug)


@require_GET
def meeting_ics(request: HttpRequest, slug: str) -> HttpResponse:
    meeting = get_object_or_404(_listed_meetings(request), slug=slug)
    body = calendar_for([meeting], url_for=_room_url(request), holidays=holiday_dates(), name=meeting.room.name)
    return _calendar_response(body, f"{meeting.slug}.ics")


@require_GET
def saved_ics(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"{reverse('accounts:sign_in')}?next={request.path}")
    meetings = Meeting.objects.with_schedule().filter(saved_by__user_id=request.user.pk)
    body = calendar_for(meetings, url_for=_room_url(request), holidays=holiday_dates(), name="My Saathi meetings")
    response = _calendar_response(body, "saathi-meetings.ics")
    response["Cache-Control"] = "private, no-store"  # which meetings a member goes to is private
    return response


def _calendar_response(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def meetings_json(request: HttpRequest) -> JsonResponse:
    """The Meeting Guide feed of every public meeting (validates against the spec's schema)."""
    meetings = Meeting.objects.public().with_schedule()
    response = JsonResponse(meeting_guide_rows(meetings, room_url=_room_url(request)), safe=False)
    response["Access-Control-Allow-Origin"] = "*"  # a public feed that meeting-finder apps read
    return response


@require_http_methods(["GET", "POST"])
def milestones(request: HttpRequest) -> HttpResponse:
    """A member's private sobriety date: set it, reset it (never announced), or clear it."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('accounts:sign_in')}?next={request.path}")
    user = request.user
    error = ""
    if request.method == "POST":
        if request.POST.get("action") == "clear":
            do_set_sobriety_date(user=user, sobriety_date=None)  # type: ignore[arg-type]
            return redirect("meetings:milestones")
        try:
            chosen = date.fromisoformat(request.POST.get("sobriety_date", ""))
        except ValueError:
            error = "Choose a date."
        else:
            if chosen > timezone.localdate():
                error = "The date can't be in the future."
            else:
                do_set_sobriety_date(user=user, sobriety_date=chosen)  # type: ignore[arg-type]
                return redirect("meetings:milestones")
    milestone = milestone_for(user, now=timezone.now(), tz=viewer_tz(request))  # type: ignore[arg-type]
    response = render(request, "meetings/milestones.html", {"milestone": milestone, "error": error})
    response["Cache-Control"] = "private, no-store"
    return response
