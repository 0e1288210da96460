"""Sanity-check the crisis detector on the public development sets (aggregate numbers only).

Run: .venv/bin/python -m bench.crisis_devset [PATH]   (default ../shared/data/crisis)

CONTENT WARNING for the data. This script never prints, logs or stores a text from it: only
counts and rates. Each set is split in two by a stable hash of the row or user id: "dev" is the
half a developer may read misses from (privately, never into the repo) and "check" is the half
only ever looked at as numbers, so tuning on one half shows whether it generalises to the other.

Splits, as the data README suggests:
- OpenAI moderation eval: clean negatives (all eight flags present and 0) for the false-alarm
  rate; SH = 0 rows for a broader false-alarm rate; SH = 1 rows for rough recall ("depicts or
  promotes" is broader than our "present risk", so misses there are not all errors).
- Reddit C-SSRS (Gaur et al. 2019, CC BY 4.0, DOI 10.5281/zenodo.2667859): each user's posts are
  split into single posts; labels are per user. Supportive/Indicator map to "no page",
  Ideation/Behavior/Attempt to rising risk. Reported per label at post level and user level.
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from moderation.scanning import Assessment, Level, load_lexicon, scan

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "crisis"
FLAGS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")
REDDIT_LABELS = ("Supportive", "Indicator", "Ideation", "Behavior", "Attempt")


def _half(key: str) -> str:
    return "dev" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "check"


def _rate(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}% ({n}/{d})" if d else "   -"


def _openai_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if line.strip():
                yield n, json.loads(line)


def openai_section(root: Path) -> list[str]:
    """Return report lines for the OpenAI moderation evaluation set."""
    path = root / "openai-moderation-eval" / "samples-1680.jsonl.gz"
    if not path.exists():
        return [f"OpenAI set: not found at {path}"]
    # (subset, half) -> [n, crisis, concern+]
    stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for n, row in _openai_rows(path):
        text = str(row.get("prompt", ""))
        a = scan(text)
        half = _half(f"openai:{n}")
        subsets = []
        if all(row.get(f) == 0 for f in FLAGS):
            subsets.append("clean negatives")
        if row.get("SH") == 0:
            subsets.append("SH=0")
        if row.get("SH") == 1:
            subsets.append("SH=1")
        for s in subsets:
            for h in (half, "all"):
                st = stats[(s, h)]
                st[0] += 1
                st[1] += a.is_crisis
                st[2] += a.level >= Level.CONCERN
    lines = ["OpenAI moderation eval (Markov et al. 2023, MIT)", ""]
    lines.append(f"{'subset':<18}{'half':<7}{'paged (high+)':>22}{'concern or more':>22}")
    for s in ("clean negatives", "SH=0", "SH=1"):
        for h in ("dev", "check", "all"):
            n, c, k = stats[(s, h)]
            lines.append(f"{s:<18}{h:<7}{_rate(c, n):>22}{_rate(k, n):>22}")
    lines.append("  (clean negatives and SH=0: 'paged' is the false-alarm rate; SH=1: it is rough recall)")
    return lines


def _posts(cell: str) -> list[str]:
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        return [cell]
    if isinstance(value, list):
        return [str(p) for p in value]
    return [str(value)]


def reddit_section(root: Path) -> list[str]:
    """Return report lines for the Reddit C-SSRS set, post level and user level."""
    path = root / "reddit-cssrs-gaur2019" / "500_Reddit_users_posts_labels.csv"
    if not path.exists():
        return [f"Reddit set: not found at {path}"]
    csv.field_size_limit(sys.maxsize)
    post_stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    user_stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    levels: Counter[str] = Counter()
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = row["Label"].strip()
            half = _half(f"reddit:{row['User']}")
            user_paged = False
            for post in _posts(row["Post"]):
                a: Assessment = scan(post)
                levels[a.level.value] += 1
                for h in (half, "all"):
                    st = post_stats[(label, h)]
                    st[0] += 1
                    st[1] += a.is_crisis
                    st[2] += a.level is Level.IMMINENT
                    st[3] += a.level >= Level.CONCERN
                user_paged = user_paged or a.is_crisis
            for h in (half, "all"):
                us = user_stats[(label, h)]
                us[0] += 1
                us[1] += user_paged
    lines = ["Reddit C-SSRS (Gaur et al. 2019, CC BY 4.0, doi:10.5281/zenodo.2667859)", ""]
    lines.append(f"{'label':<12}{'half':<7}{'posts paged':>22}{'imminent':>20}{'concern+':>22}{'users paged':>20}")
    for label in REDDIT_LABELS:
        for h in ("dev", "check", "all"):
            n, c, i, k = post_stats[(label, h)]
            un, uc = user_stats[(label, h)]
            lines.append(f"{label:<12}{h:<7}{_rate(c, n):>22}{_rate(i, n):>20}{_rate(k, n):>22}{_rate(uc, un):>20}")
    lines.append("  (Supportive/Indicator: 'paged' should be low; Ideation/Behavior/Attempt: higher,")
    lines.append("   but labels are per user and many posts of an at-risk user are not themselves a crisis)")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print aggregate metrics for the development sets."""
    parser = argparse.ArgumentParser(prog="python -m bench.crisis_devset", description=main.__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    lex = load_lexicon()
    t0 = time.perf_counter()
    out = [f"crisis dev-set check, lexicon {lex.version}, data {args.path}", ""]
    out += openai_section(args.path)
    out += [""]
    out += reddit_section(args.path)
    out += ["", f"({time.perf_counter() - t0:.1f} s)"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
