"""Give the staff groups real permissions for moderation; services check permissions, not group names."""

from django.db import migrations

# codename -> (model, readable name); the default view_/change_/add_ permissions are created here too,
# because post_migrate (which normally makes them) runs after this migration on a fresh database.
PERMISSIONS = {
    "view_flag": ("flag", "Can view flag"),
    "handle_flag": ("flag", "Can acknowledge, follow up and resolve crisis flags"),
    "view_report": ("report", "Can view report"),
    "change_report": ("report", "Can change report"),
    "view_auditentry": ("auditentry", "Can view audit entry"),
    "moderate_rooms": ("auditentry", "Can use moderation actions in every room"),
    "view_rotashift": ("rotashift", "Can view rota shift"),
    "add_rotashift": ("rotashift", "Can add rota shift"),
    "change_rotashift": ("rotashift", "Can change rota shift"),
    "delete_rotashift": ("rotashift", "Can delete rota shift"),
}

GROUPS = {
    "moderator": ["view_flag", "view_report", "change_report", "view_auditentry", "moderate_rooms", "view_rotashift"],
    "counsellor": ["view_flag", "handle_flag", "view_auditentry", "view_rotashift"],
    "admin": list(PERMISSIONS),
}


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    perms = {}
    for codename, (model, name) in PERMISSIONS.items():
        ct, _ = ContentType.objects.get_or_create(app_label="moderation", model=model)
        perms[codename], _ = Permission.objects.get_or_create(codename=codename, content_type=ct, defaults={"name": name})
    for group_name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(perms[c] for c in codenames))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUPS.items():
        group = Group.objects.filter(name=group_name).first()
        if group is not None:
            group.permissions.remove(*Permission.objects.filter(content_type__app_label="moderation", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0002_flags_reports_rota"),
        ("accounts", "0002_role_groups"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
