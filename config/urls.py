from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from config import views
from rooms import views as room_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("weather/", views.exit_page, name="exit"),
    path("guest/", account_views.guest, name="guest"),
    path("accounts/", include("accounts.urls")),
    path("rooms/", include("rooms.urls")),
    path("meetings/", include("rooms.meeting_urls")),
    path("meetings.json", room_views.meetings_json, name="meetings_json"),
    path("moderation/", include("moderation.urls")),
    path("admin/", admin.site.urls),
]
