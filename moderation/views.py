"""The moderation pages: the live queue, one flag, reports, the audit log. Staff only; thin."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.services import participant_for
from chat.protocol import ProtocolError
from moderation import services
from moderation.models import AuditEntry, Flag, Report

View = Callable[..., HttpResponse]


def staff_only(*, need: str) -> Callable[[View], View]:
    """Refuse (403) anyone whose account lacks `need` (a StaffAccess attribute); send the signed-out to sign in."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            participant = participant_for(user=request.user, session=request.session)
            if participant is None:
                return redirect(f"/accounts/sign-in/?next={request.path}")
            access = services.staff_access(participant)
            if access is None or not getattr(access, need):
                raise PermissionDenied("This page is for staff.")
            request.staff = access  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


@require_GET
@staff_only(need="audiences")
def dashboard(request: HttpRequest) -> HttpResponse:
    access: services.StaffAccess = request.staff  # type: ignore[attr-defined]
    flags = services.live_flags() if access.flags else []
    reports = services.open_reports() if access.reports else []
    counts = {level: sum(1 for f in flags if f.level == level) for level in ("imminent", "high", "concern")}
    return render(
        request,
        "moderation/dashboard.html",
        {
            "access": access,
            "flags": [services.flag_frame(f) for f in flags],
            "reports": [services.report_frame(r) for r in reports],
            "counts": counts,
            "on_call": services.on_call_rows(now=timezone.now()),
            "outcomes": Flag.Outcome.choices,
        },
    )


@require_GET
@staff_only(need="flags")
def flag_detail(request: HttpRequest, flag_id: int) -> HttpResponse:
    flag = get_object_or_404(Flag.objects.select_related("room", "message", "private_room"), pk=flag_id)
    return render(
        request,
        "moderation/flag.html",
        {
            "access": request.staff,  # type: ignore[attr-defined]
            "flag": flag,
            "frame": services.flag_frame(flag),
            "context": services.flag_context(flag),
            "history": [services.audit_row(e) for e in flag.audit_entries.order_by("created_at", "id")],
            "outcomes": Flag.Outcome.choices,
        },
    )


@require_POST
@staff_only(need="handle_flags")
def flag_action(request: HttpRequest, flag_id: int, action: str) -> HttpResponse:
    actor = request.staff.participant  # type: ignore[attr-defined]
    try:
        if action == "ack":
            services.do_acknowledge_flag(flag_id=flag_id, actor=actor)
        elif action == "room":
            room = services.do_open_private_room(flag_id=flag_id, actor=actor)
            return redirect("rooms:room", slug=room.slug)
        elif action == "note":
            services.do_add_handoff_note(flag_id=flag_id, actor=actor, note=request.POST.get("note", "")[:4000])
        elif action == "resolve":
            services.do_resolve_flag(
                flag_id=flag_id,
                actor=actor,
                outcome=request.POST.get("outcome", ""),
                note=request.POST.get("note", "")[:4000],
            )
        else:
            raise PermissionDenied("Unknown action.")
    except ProtocolError as refusal:
        messages.error(request, refusal.detail)
    return redirect("moderation:flag", flag_id=flag_id)


@require_GET
@staff_only(need="reports")
def report_list(request: HttpRequest) -> HttpResponse:
    reports = Report.objects.select_related("room", "message").order_by("state", "-created_at")[:200]
    return render(request, "moderation/reports.html", {"reports": [services.report_frame(r) for r in reports]})


@require_POST
@staff_only(need="reports")
def report_close(request: HttpRequest, report_id: int) -> HttpResponse:
    try:
        services.do_close_report(
            report_id=report_id,
            actor=request.staff.participant,  # type: ignore[attr-defined]
            state=request.POST.get("state", ""),
            note=request.POST.get("note", "")[:500],
        )
    except ProtocolError as refusal:
        messages.error(request, refusal.detail)
    return redirect("moderation:reports")


@require_GET
@staff_only(need="audit")
def audit_log(request: HttpRequest) -> HttpResponse:
    entries = AuditEntry.objects.select_related("room")[:500]
    return render(request, "moderation/audit.html", {"entries": [services.audit_row(e) for e in entries]})
