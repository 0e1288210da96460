from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.forms import GuestForm, SignUpForm
from accounts.handles import HandleError
from accounts.services import do_sign_up, do_take_guest_pass, free_suggested_handle


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
