"""Which staff group holds which moderation permission. Services check permissions, never group names.

Migration 0003 grants these on a new database; `ensure_role_permissions` runs after every `migrate` (and
after a test flush) so the groups always hold them.
"""

from __future__ import annotations

from typing import Any

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "moderator": ("view_flag", "view_report", "change_report", "view_auditentry", "moderate_rooms", "view_rotashift"),
    "counsellor": ("view_flag", "handle_flag", "view_auditentry", "view_rotashift"),
    "admin": (
        "view_flag",
        "handle_flag",
        "view_report",
        "change_report",
        "view_auditentry",
        "moderate_rooms",
        "view_rotashift",
        "add_rotashift",
        "change_rotashift",
        "delete_rotashift",
    ),
}


def ensure_role_permissions(**kwargs: Any) -> None:
    """Give each staff group its moderation permissions (idempotent; a post_migrate receiver)."""
    from django.contrib.auth.models import Group, Permission

    perms = {p.codename: p for p in Permission.objects.filter(content_type__app_label="moderation")}
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*(perms[c] for c in codenames if c in perms))
