"""Measure the crisis detector against labelled messages (pure metrics, no Django).

Labels are none, concern, high or imminent; "crisis" means high-or-imminent when the labeller
did not say which. Rows may carry a list of categories; category metrics use only those rows.
Nothing here prints a message's text: error listings name line numbers only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moderation.scanning import CATEGORIES, Assessment, Level, LexiconError, load_lexicon, scan

__all__ = ["Counts", "Report", "evaluate", "format_report", "main", "read_jsonl"]

LABELS = ("none", "concern", "high", "imminent", "crisis")
# Thresholds reported: "at or above concern", "at or above high" (= paged), "imminent".
THRESHOLDS = (Level.CONCERN, Level.HIGH, Level.IMMINENT)

Row = tuple[str, str] | tuple[str, str, Sequence[str] | None]


@dataclass(frozen=True, slots=True)
class Counts:
    """A confusion count for one binary question."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.fp + self.tn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.positives if self.positives else None

    @property
    def false_alarm_rate(self) -> float | None:
        return self.fp / self.negatives if self.negatives else None

    def add(self, truth: bool, predicted: bool) -> Counts:
        """Return these counts with one more observation."""
        return Counts(
            self.tp + (truth and predicted),
            self.fp + (not truth and predicted),
            self.fn + (truth and not predicted),
            self.tn + (not truth and not predicted),
        )


@dataclass(frozen=True, slots=True)
class Report:
    """Metrics for one evaluation run."""

    lexicon_version: str
    total: int
    thresholds: dict[str, Counts]
    categories: dict[str, Counts]
    confusion: dict[tuple[str, str], int]
    errors: tuple[int, ...] = field(default=())  # 1-based row numbers the crisis decision got wrong

    @property
    def crisis(self) -> Counts:
        """Return the counts for the decision that matters: page or not (HIGH or above)."""
        return self.thresholds[Level.HIGH.value]


def _truth_at(label: str, threshold: Level) -> bool | None:
    """Return whether a label is at or above a threshold, or None if the label cannot say."""
    if label == "crisis":
        if threshold is Level.IMMINENT:
            return None
        return True
    return Level(label) >= threshold


def evaluate(
    rows: Iterable[Row],
    scanner: Callable[[str], Assessment] | None = None,
    lexicon_version: str | None = None,
) -> Report:
    """Scan every (text, label[, categories]) row and count hits and misses."""
    run = scanner if scanner is not None else scan
    thresholds = {t.value: Counts() for t in THRESHOLDS}
    categories = {c: Counts() for c in CATEGORIES}
    confusion: Counter[tuple[str, str]] = Counter()
    errors: list[int] = []
    total = 0
    for n, row in enumerate(rows, start=1):
        text, label = row[0], row[1].strip().lower()
        cats = row[2] if len(row) > 2 else None
        if label not in LABELS:
            raise ValueError(f"row {n}: unknown label {label!r} (expected one of {', '.join(LABELS)})")
        total += 1
        a = run(text)
        confusion[(label, a.level.value)] += 1
        for t in THRESHOLDS:
            truth = _truth_at(label, t)
            if truth is not None:
                thresholds[t.value] = thresholds[t.value].add(truth, a.level >= t)
        if _truth_at(label, Level.HIGH) != a.is_crisis:
            errors.append(n)
        if cats is not None:
            wanted = {c.strip().lower() for c in cats}
            unknown = wanted - set(CATEGORIES)
            if unknown:
                raise ValueError(f"row {n}: unknown categories {sorted(unknown)}")
            for c in CATEGORIES:
                categories[c] = categories[c].add(c in wanted, c in a.categories)
    version = lexicon_version if lexicon_version is not None else load_lexicon().version
    return Report(
        lexicon_version=version,
        total=total,
        thresholds=thresholds,
        categories={c: v for c, v in categories.items() if v.positives or v.fp},
        confusion=dict(confusion),
        errors=tuple(errors),
    )


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def format_report(report: Report) -> str:
    """Return a plain-text table of the report."""
    lines = [
        f"crisis detector evaluation: {report.total} messages, lexicon {report.lexicon_version}",
        "",
        f"{'decision':<22}{'pos':>6}{'neg':>6}{'precision':>11}{'recall':>9}{'false alarm':>13}",
    ]
    names = {"concern": "level >= concern", "high": "crisis (high+)", "imminent": "imminent"}
    for key, c in report.thresholds.items():
        lines.append(
            f"{names[key]:<22}{c.positives:>6}{c.negatives:>6}"
            f"{_pct(c.precision):>11}{_pct(c.recall):>9}{_pct(c.false_alarm_rate):>13}"
        )
    if report.categories:
        lines += ["", f"{'category':<22}{'pos':>6}{'neg':>6}{'precision':>11}{'recall':>9}{'false alarm':>13}"]
        for key, c in report.categories.items():
            lines.append(
                f"{key:<22}{c.positives:>6}{c.negatives:>6}"
                f"{_pct(c.precision):>11}{_pct(c.recall):>9}{_pct(c.false_alarm_rate):>13}"
            )
    levels = [lv.value for lv in Level]
    lines += ["", "label \\ predicted   " + "".join(f"{lv:>10}" for lv in levels)]
    for label in LABELS:
        counts = [report.confusion.get((label, lv), 0) for lv in levels]
        if any(counts):
            lines.append(f"{label:<20}" + "".join(f"{x:>10}" for x in counts))
    return "\n".join(lines)


def read_jsonl(path: Path) -> tuple[list[Row], list[str]]:
    """Read {"text", "label", "categories"?} lines; return the rows and one problem per bad line."""
    rows: list[Row] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {n}: invalid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                problems.append(f"line {n}: needs a string 'text'")
                continue
            label = str(obj.get("label", "")).strip().lower()
            if label not in LABELS:
                problems.append(f"line {n}: label must be one of {', '.join(LABELS)}")
                continue
            cats = obj.get("categories")
            if cats is not None and not (isinstance(cats, list) and all(isinstance(c, str) for c in cats)):
                problems.append(f"line {n}: categories must be a list of strings")
                continue
            rows.append((obj["text"], label, cats))
    return rows, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate the detector on a JSON Lines file; exit 1 if a target is missed, 2 on bad input."""
    parser = argparse.ArgumentParser(prog="crisis_eval", description=main.__doc__)
    parser.add_argument("file", type=Path, help='JSON Lines: {"text": ..., "label": ..., "categories": [...]}')
    parser.add_argument("--lexicon", type=Path, default=None, help="lexicon TOML (default: the bundled one)")
    parser.add_argument("--min-recall", type=float, default=None, help="fail below this crisis recall (0-1)")
    parser.add_argument(
        "--max-false-alarm", type=float, default=None, help="fail above this crisis false-alarm rate (0-1)"
    )
    parser.add_argument(
        "--list-errors", action="store_true", help="print the line numbers (never the text) of wrong decisions"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        lex = load_lexicon(args.lexicon)
        rows, problems = read_jsonl(args.file)
    except (OSError, LexiconError) as exc:
        print(f"crisis_eval: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"crisis_eval: skipped {p}", file=sys.stderr)
    try:
        report = evaluate(rows, scanner=lambda t: scan(t, lex), lexicon_version=lex.version)
    except ValueError as exc:
        print(f"crisis_eval: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.list_errors and report.errors:
        print("\nwrong page/no-page decisions at rows: " + ", ".join(map(str, report.errors)))
    failed = False
    recall, fa = report.crisis.recall, report.crisis.false_alarm_rate
    if args.min_recall is not None and recall is not None and recall < args.min_recall:
        print(f"\nFAIL: crisis recall {recall:.3f} < {args.min_recall}")
        failed = True
    if args.max_false_alarm is not None and fa is not None and fa > args.max_false_alarm:
        print(f"\nFAIL: false-alarm rate {fa:.3f} > {args.max_false_alarm}")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
