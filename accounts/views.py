from __future__ import annotations

import base64

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import DeleteAccountForm, GuestForm, SignUpForm
from accounts.handles import HandleError
from accounts.services import (
    do_delete_account,
    do_end_guest_pass,
    do_sign_up,
    do_take_guest_pass,
    export_account,
    free_suggested_handle,
    role_names,
)
from accounts.twofactor import needs_second_factor, session_verified, unconfirmed_device


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = do_sign_up(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                handle=form.cleaned_data["handle"],
                kind=form.cleaned_data["kind"],
                email=form.cleaned_data.get("email") or "",
            )
        except HandleError as exc:
            form.add_error("handle", str(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.handle}.")
            return redirect("rooms:list")
    return render(request, "accounts/sign_up.html", {"form": form}, status=400 if form.errors else 200)


class SignInView(LoginView):
    template_name = "accounts/sign_in.html"
    redirect_authenticated_user = True

    def get_success_url(self) -> str:
        url = super().get_success_url()
        user = self.request.user
        if needs_second_factor(role_names(user)) and not session_verified(user, self.request.session):
            return f"/accounts/second-factor/?next={url}"
        return url


@require_http_methods(["GET", "POST"])
def guest(request: HttpRequest) -> HttpResponse:
    """One click: a guest seat with a suggested handle (changeable), then straight into the meeting."""
    if request.method == "POST":
        data = request.POST.copy()
        if not data.get("handle"):
            data["handle"] = free_suggested_handle()
        form = GuestForm(data)
        if form.is_valid():
            try:
                do_take_guest_pass(session=request.session, handle=form.cleaned_data["handle"])
            except HandleError as exc:
                form.add_error("handle", str(exc))
            else:
                return redirect(_safe_next(request, "/rooms/"))
        return render(request, "accounts/guest.html", {"form": form}, status=400)
    form = GuestForm(initial={"handle": free_suggested_handle(), "next": _safe_next(request, "")})
    return render(request, "accounts/guest.html", {"form": form})


@login_required
@require_GET
def my_account(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/me.html", {"delete_form": DeleteAccountForm(user=request.user)})


@login_required
@require_GET
def export_my_data(request: HttpRequest) -> HttpResponse:
    """Download everything Saathi holds about you, as JSON."""
    response = JsonResponse(export_account(request.user), json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = 'attachment; filename="saathi-my-data.json"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def delete_my_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST, user=request.user)
    if not form.is_valid():
        return render(request, "accounts/me.html", {"delete_form": form}, status=400)
    user = request.user
    logout(request)
    do_delete_account(user=user)
    messages.success(request, "Your account and what you wrote have been deleted. Take care of yourself.")
    return redirect("home")


@require_POST
def leave_as_guest(request: HttpRequest) -> HttpResponse:
    """End a guest seat: the handle is freed and the session forgotten."""
    do_end_guest_pass(session=request.session)
    request.session.flush()
    return redirect("home")


@login_required
@require_http_methods(["GET", "POST"])
def second_factor(request: HttpRequest) -> HttpResponse:
    """Set up (first time) or check the authenticator code that staff need before acting as staff."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = confirmed or unconfirmed_device(user)
    error = ""
    if request.method == "POST":
        token = "".join(ch for ch in request.POST.get("token", "") if ch.isdigit())
        if token and device.verify_token(token):
            if not device.confirmed:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return redirect(_safe_next(request, "/"))
        error = "That code didn't match. Codes change every 30 seconds; try the current one."
    context = {"setting_up": not device.confirmed, "error": error, "next": _safe_next(request, "")}
    if not device.confirmed:
        context["secret"] = base64.b32encode(device.bin_key).decode()
        context["otpauth"] = device.config_url
    return render(request, "accounts/second_factor.html", context, status=400 if error else 200)
