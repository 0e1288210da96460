from django.contrib.auth.views import LogoutView, PasswordChangeView
from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("sign-up/", views.sign_up, name="sign_up"),
    path("sign-in/", views.SignInView.as_view(), name="sign_in"),
    path("sign-out/", LogoutView.as_view(), name="sign_out"),
    path("guest/", views.guest, name="guest"),
    path("guest/leave/", views.leave_as_guest, name="leave_guest"),
    path("me/", views.my_account, name="me"),
    path("second-factor/", views.second_factor, name="second_factor"),
    path("me/export/", views.export_my_data, name="export"),
    path("me/delete/", views.delete_my_account, name="delete"),
    path(
        "password/",
        PasswordChangeView.as_view(template_name="accounts/password.html", success_url="/accounts/me/"),
        name="password",
    ),
]
