#!/usr/bin/env python3
"""Saathi's two commands, for a fresh machine with Python 3.11 and nothing else:

    python3 dev.py run     install everything, migrate, seed demo rooms, serve http://127.0.0.1:8000
    python3 dev.py test    install everything and run the whole test suite (SQLite, then PostgreSQL + Redis)

Only the standard library is used here, so it works before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".saathi-installed"
POSTGRES_TEST_URL = "postgres://postgres@127.0.0.1:5432/test"


def _run(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.call(list(args), cwd=ROOT, env={**os.environ, **(env or {})})  # noqa: S603  # our own tools


def install() -> None:
    """Create .venv and install the project with the pinned constraints (skipped when nothing changed)."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Saathi needs Python 3.11 (this is {sys.version.split()[0]}).")
    if not PY.exists():
        print("Creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    print("Installing dependencies (pinned by constraints.txt) …", flush=True)
    steps = [
        [str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(PY), "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", ".[dev]"],
    ]
    for step in steps:
        if _run(*step) != 0:
            sys.exit("Installing dependencies failed.")
    STAMP.write_text(digest)


def run() -> int:
    install()
    manage = [str(PY), "manage.py"]
    for step in (["migrate", "--no-input", "-v", "0"], ["seed_demo"]):
        if _run(*manage, *step) != 0:
            return 1
    print("Saathi is at http://127.0.0.1:8000 (Ctrl+C to stop)", flush=True)
    return _run(*manage, "serve", "--port", os.environ.get("PORT", "8000"))


def test(extra: list[str]) -> int:
    install()
    pytest = [str(PY), "-m", "pytest"]
    if extra:  # a focused run: just what was asked, on the configured database
        return _pass_result(_run(*pytest, *extra))
    print("\n== Pass 0: security checks (bandit, pip-audit) ==", flush=True)
    audit = security_checks()
    print("\n== Pass 1: everything that runs in one process, on SQLite ==", flush=True)
    first = _pass_result(_run(*pytest, "-m", "not system and not full"))
    print("\n== Pass 2: services, sockets and real processes, on PostgreSQL and Redis ==", flush=True)
    postgres_url = os.environ.get("SAATHI_TEST_POSTGRES_URL", POSTGRES_TEST_URL)
    if not _reachable("127.0.0.1", 5432) and "SAATHI_TEST_POSTGRES_URL" not in os.environ:
        if os.environ.get("CI", "").lower() == "true":
            print("FAILED: PostgreSQL is not reachable at 127.0.0.1:5432, and CI=true requires it.")
            return 1
        print("SKIPPED pass 2: PostgreSQL is not reachable at 127.0.0.1:5432 (start it to run these tests).")
        return first
    second = _pass_result(
        _run(
            *pytest, "-m", "not full", "tests/integration", "tests/consumers", "tests/system",
            env={"DATABASE_URL": postgres_url,
                 "REDIS_URL": os.environ.get("SAATHI_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")},
        )
    )  # fmt: skip
    return audit or first or second


def security_checks() -> int:
    """bandit over the app code, and pip-audit over the pinned dependencies."""
    code = _run(str(PY), "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", "accounts", "chat", "rooms", "moderation",
                "config")  # fmt: skip
    print("bandit:", "clean" if code == 0 else "FINDINGS (see above)", flush=True)
    result = subprocess.run(  # noqa: S603  # the project's own interpreter
        [str(PY), "-m", "pip_audit", "-r", "constraints.txt", "--format", "json", "--progress-spinner", "off"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        print("pip-audit: could not run:", result.stderr.strip()[-500:], flush=True)
        return code or 1
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = [d for d in dependencies if "skip_reason" not in d]
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"pip-audit: {dep['name']} {dep['version']}: {ids}", flush=True)
    if vulnerable:
        return 1
    if dependencies and not audited:
        # The vulnerability service (PyPI's JSON API) can't be reached from this machine: say so plainly.
        print(f"pip-audit: NOT AUDITED: the vulnerability service was unreachable for all {len(dependencies)} "
              "pinned packages (no known vulnerabilities could be checked).", flush=True)  # fmt: skip
    else:
        print(f"pip-audit: no known vulnerabilities in {len(audited)} audited packages", flush=True)
    return code


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _pass_result(code: int) -> int:
    # pytest exits 5 when it collected no tests: that is a failure here, never a silent pass.
    return 1 if code == 5 else code


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "run":
        return run()
    if command == "test":
        return test(sys.argv[2:])
    if command == "install":
        install()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
