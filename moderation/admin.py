"""Admins keep the on-call rota in the Django admin; flags and the audit log are read-only there."""

from __future__ import annotations

from django.contrib import admin

from moderation.models import AuditEntry, RotaShift


@admin.register(RotaShift)
class RotaShiftAdmin(admin.ModelAdmin):
    list_display = ("user", "position", "starts_at", "ends_at", "time_zone")
    list_filter = ("position",)
    autocomplete_fields = ()
    raw_id_fields = ("user",)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_handle", "action", "room", "target_handle", "reason")
    list_filter = ("action",)
    exclude = ("actor_key", "target_key")  # account keys stay out of screens

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
