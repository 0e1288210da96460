from django.urls import path

from rooms import views

app_name = "meetings"
urlpatterns = [
    path("", views.meeting_directory, name="directory"),
    path("saved.ics", views.saved_ics, name="saved_ics"),
    path("milestones/", views.milestones, name="milestones"),
    path("<slug:slug>/", views.meeting_page, name="meeting"),
    path("<slug:slug>.ics", views.meeting_ics, name="ics"),
    path("<slug:slug>/save/", views.save_meeting, name="save"),
]
