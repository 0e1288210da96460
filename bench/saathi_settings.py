"""Saathi's own settings, with static files collected into a directory the benchmark owns.

With DJANGO_DEBUG=false Saathi serves static files through a manifest that `collectstatic`
writes to STATIC_ROOT, which is fixed inside the work tree. The benchmark collects into
BENCH_STATIC_ROOT instead so it writes nothing outside bench/ and a temporary directory.
Everything else is config.settings, unchanged.
"""

import os
from pathlib import Path

from config.settings import *  # noqa: F403

STATIC_ROOT = Path(os.environ["BENCH_STATIC_ROOT"])

# The "persistence and crisis scan off" variant (target saathi-nostore) swaps the store for bench/nostore.py.
SAATHI_SEND_STORE = os.environ.get("BENCH_SEND_STORE", SAATHI_SEND_STORE)  # noqa: F405
