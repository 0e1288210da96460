"""Erasure: what deleting an account removes, and the one pseudonymous trace it leaves.

Policy (docs/privacy.md): the account row, its guest passes, sessions, sign-in throttle records and
restrictions are deleted; the handle is retired so nobody inherits it; every message the person wrote
stays as a placeholder "[removed]" (so the conversation around it still reads in order) with no link to
them; audit entries that named them keep only a pseudonym. One audit entry records the erasure itself.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def pseudonym(author_key: str) -> str:
    """Return a stable, unlinkable stand-in for an author key (the same person maps to the same value)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"erased:{author_key}".encode(), hashlib.sha256).hexdigest()
    return f"x:{digest[:20]}"
