"""Recompute look-alike keys after the folding rules grew (l/1/I fold to i; more UTS #39 look-alikes).

Handles stored under the old rules would otherwise let a new look-alike in. Where two existing handles now
collide, the older key is kept for the later row so no one is locked out; staff keys ("staff:…") are left.
"""

from django.db import migrations


def recompute(apps, schema_editor):
    from accounts.handles import skeleton

    for model_name in ("User", "GuestPass"):
        model = apps.get_model("accounts", model_name)
        for row in model.objects.exclude(handle_key__startswith="staff:").order_by("pk"):
            new_key = skeleton(row.handle)
            if new_key == row.handle_key or model.objects.filter(handle_key=new_key).exists():
                continue
            row.handle_key = new_key
            row.save(update_fields=["handle_key"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_user_sobriety_date")]
    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
