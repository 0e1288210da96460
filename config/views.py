from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.services import participant_for
from chat.failures import STARTING_PROBE
from chat.writer import writer_starting


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"participant": participant_for(user=request.user, session=request.session)})


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness and readiness for the proxy and compose: the database answers, and this process's send writer
    has finished starting (until then a send would wait seconds for its first answer)."""
    if writer_starting():
        setattr(request, STARTING_PROBE, True)  # not logged as a server error (chat.failures.not_a_starting_probe)
        return JsonResponse({"status": "starting"}, status=503)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
def exit_page(request: HttpRequest) -> HttpResponse:
    """The neutral page quick exit lands on when no other site is configured."""
    return render(request, "exit.html")
