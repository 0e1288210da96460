from django.urls import path

from rooms import views

app_name = "rooms"
urlpatterns = [
    path("", views.room_list, name="list"),
    path("<slug:slug>/", views.room_page, name="room"),
    path("<slug:slug>/attest/", views.attest_woman, name="attest"),
]
