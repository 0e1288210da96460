from django.urls import path

from moderation import views

app_name = "moderation"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("flags/<int:flag_id>/", views.flag_detail, name="flag"),
    path("flags/<int:flag_id>/<slug:action>/", views.flag_action, name="flag_action"),
    path("reports/", views.report_list, name="reports"),
    path("reports/<int:report_id>/close/", views.report_close, name="report_close"),
    path("audit/", views.audit_log, name="audit"),
]
