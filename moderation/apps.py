from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ModerationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "moderation"

    def ready(self) -> None:
        from moderation import sockets
        from moderation.permissions import ensure_role_permissions

        sockets.register()
        post_migrate.connect(ensure_role_permissions, sender=self, dispatch_uid="moderation-role-permissions")
