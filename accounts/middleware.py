"""Send staff who haven't passed their second factor to the check before any staff-only page."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import urlencode

from accounts.services import role_names
from accounts.twofactor import needs_second_factor, session_verified

STAFF_ONLY_PREFIXES = ("/admin/", "/moderation/")


class StaffSecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._unverified_staff_on_staff_page(request):
            return redirect(f"/accounts/second-factor/?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    @staticmethod
    def _unverified_staff_on_staff_page(request: HttpRequest) -> bool:
        if not request.path.startswith(STAFF_ONLY_PREFIXES) or not request.user.is_authenticated:
            return False
        return needs_second_factor(role_names(request.user)) and not session_verified(request.user, request.session)
