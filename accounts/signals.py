"""Close a person's open sockets when who they are changes: sign-out, password change, roles."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from accounts.models import User
from chat import broadcast
from chat.protocol import CloseCode


@receiver(user_logged_out)
def close_sockets_on_sign_out(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is not None and user.pk:
        broadcast.publish_control_on_commit(author_key=f"u:{user.pk}", action="close", code=CloseCode.NOT_SIGNED_IN)


@receiver(m2m_changed, sender=User.groups.through)
def refresh_sockets_on_role_change(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    # The browser reconnects on 4503 and the new connection carries the new roles.
    # Someone who has never signed in (an account being created) has no sockets to refresh.
    if not isinstance(instance, User) or instance.pk is None or instance.last_login is None:
        return
    if action in ("post_add", "post_remove", "post_clear"):
        broadcast.publish_control_on_commit(author_key=f"u:{instance.pk}", action="refresh", code=CloseCode.RECONNECT)
