from django.contrib import admin

from rooms.models import Holiday, Meeting, MeetingException


class MeetingExceptionInline(admin.TabularInline):
    model = MeetingException
    extra = 1


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):
    list_display = ["slug", "room", "rrule", "start_local", "tz", "is_public"]
    search_fields = ["slug", "room__name"]
    readonly_fields = ["applied_phase", "applied_starts_at", "updated_at", "imported_from"]
    inlines = [MeetingExceptionInline]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Slugs never change once published: feeds, calendars and bookmarks depend on them.
        return [*self.readonly_fields, "slug"] if obj is not None else self.readonly_fields


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "name"]
