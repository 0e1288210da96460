"""The fan-out benchmark runs end to end: every row gets a number, and results land in JSON.

This checks that the benchmark works, not how fast anything is. It runs `python -m bench.fanout --quick`
against the baselines (and against Saathi with BENCH_SMOKE_SAATHI=1), each server started fresh in a
subprocess with a private redis-server on a free port: the shared Redis on 6379 is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
REDIS_NEEDED = "the benchmark needs redis-server on PATH (it starts a private one on a free port)"

pytestmark = [pytest.mark.system, pytest.mark.timeout(420)]


def _require_redis() -> None:
    if shutil.which("redis-server") is None:
        skip_or_fail(REDIS_NEEDED)


def _run_quick(targets: list[str], out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.fanout", "--quick", "--targets", ",".join(targets), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert out.exists(), "no JSON written"
    return json.loads(out.read_text())


def _assert_works(doc: dict[str, Any], name: str) -> None:
    res = doc["results"][name]
    assert res["errors"] == [], res["errors"]
    idle = res["idle"]
    assert idle["idle_clients"] > 0
    assert isinstance(idle["kib_per_idle_conn"], float)
    assert idle["connect_per_s"] > 0
    for key, _rooms, _size, _senders in doc["plan"]["fanouts"]:
        climb = res[key]
        assert climb["steps"], key
        assert all(step["delivered"] > 0 for step in climb["steps"]), key
        # Whether a level held depends on the machine (a busy shared one may hold none): only the
        # measurements themselves are checked here.
        assert isinstance(climb["sustained_dps"], float)
        for step in climb["steps"]:
            for field in ("server_cpu_us_per_delivery", "p50_ms", "p99_ms"):
                assert isinstance(step[field], (int, float)), f"{name} {key}.{field} = {step[field]!r}"
    assert res["fixed"]["delivered"] > 0
    assert res["overload"]["delivered"] > 0
    if name != "relay":  # the relay has no Redis to restart
        restart = res["redis_restart"]
        assert restart["members"] > 0
        assert isinstance(restart["closed_by_server"], int)
    # The printed table has a row for every metric and a column for every target run.
    header, rows = doc["table"]["header"], doc["table"]["rows"]
    column = header.index(name)
    numeric = [row for row in rows if row[column] != "n/a"]
    assert len(numeric) >= len(rows) // 2, f"{name}: too many rows without a number"


def test_the_benchmark_measures_every_baseline(tmp_path: Path) -> None:
    _require_redis()
    doc = _run_quick(["relay", "tutorial-redis", "tutorial-pubsub"], tmp_path / "quick.json")
    for name in ("relay", "tutorial-redis", "tutorial-pubsub"):
        _assert_works(doc, name)
    assert doc["quick"] is True
    assert doc["machine"]["cores"] >= 1


def test_the_benchmark_measures_saathi_beside_a_baseline(tmp_path: Path) -> None:
    # Saathi runs on a private PostgreSQL cluster of the benchmark's own (bench/procs.py).
    if not Path("/usr/lib/postgresql").exists() or os.environ.get("BENCH_SMOKE_SAATHI") == "0":
        skip_or_fail("the PostgreSQL server binaries (/usr/lib/postgresql) are not installed")
    _require_redis()
    doc = _run_quick(["relay", "saathi", "saathi-nostore"], tmp_path / "quick-saathi.json")
    _assert_works(doc, "saathi")
    assert any(h.startswith("saathi/") for h in doc["table"]["header"]), "no ratio columns"
    # The same server with persistence and the scan off, measured for capacity only, and the on/off row.
    off = doc["results"]["saathi-nostore"]
    assert off["errors"] == [] and set(off) >= {"room200", "rooms25"} and "idle" not in off
    assert all(step["delivered"] > 0 for step in off["room200"]["steps"])
    # The two climbs took turns, a step each, the order swapped every round: both met the same host.
    for key in ("room200", "rooms25"):
        on = doc["results"]["saathi"][key]
        assert on["paired_with"] == "saathi-nostore" and off[key]["paired_with"] == "saathi"
        turns = sorted(
            [(s["started_at"], "on") for s in on["steps"]] + [(s["started_at"], "off") for s in off[key]["steps"]]
        )
        both = 2 * min(len(on["steps"]), len(off[key]["steps"]))
        rounds = [tuple(who for _, who in turns[i : i + 2]) for i in range(0, both, 2)]
        assert rounds == [("on", "off") if i % 2 == 0 else ("off", "on") for i in range(len(rounds))], rounds
    column = doc["table"]["header"].index("saathi")
    on_off = [row for row in doc["table"]["rows"] if "persistence + scan on / off" in row[0]]
    assert len(on_off) == 2 and all(row[column].endswith("x") for row in on_off), on_off
