"""Evaluation metrics for the crisis detector (moderation/crisis_eval.py); pure, no Django."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation.crisis_eval import Counts, evaluate, format_report, main
from moderation.scanning import Assessment, Level

FIXED = {
    "page me": Assessment(Level.HIGH, ("suicide",), ("t:x",)),
    "urgent": Assessment(Level.IMMINENT, ("overdose_intent",), ("t:y",)),
    "worry": Assessment(Level.CONCERN, ("using_now",), ("t:z",)),
    "fine": Assessment(Level.NONE, (), ()),
}


def fake_scan(text: str) -> Assessment:
    return FIXED[text]


def test_counts_compute_precision_recall_and_false_alarms() -> None:
    c = Counts(tp=8, fp=2, fn=2, tn=88)
    assert c.precision == pytest.approx(0.8)
    assert c.recall == pytest.approx(0.8)
    assert c.false_alarm_rate == pytest.approx(2 / 90)


def test_empty_counts_report_no_rate_rather_than_zero() -> None:
    assert Counts().precision is None and Counts().recall is None and Counts().false_alarm_rate is None


def test_crisis_decision_counts_high_and_imminent_as_paged() -> None:
    rows = [("page me", "high"), ("urgent", "imminent"), ("fine", "high"), ("page me", "none"), ("fine", "none")]
    r = evaluate(rows, scanner=fake_scan, lexicon_version="t")
    assert r.crisis == Counts(tp=2, fp=1, fn=1, tn=1)
    assert r.errors == (3, 4)


def test_crisis_label_means_high_or_imminent_and_is_skipped_for_the_imminent_threshold() -> None:
    r = evaluate([("page me", "crisis"), ("urgent", "crisis")], scanner=fake_scan, lexicon_version="t")
    assert r.crisis.tp == 2
    assert r.thresholds["imminent"] == Counts()


def test_concern_threshold_counts_concern_and_above() -> None:
    rows = [("worry", "concern"), ("fine", "concern"), ("worry", "none")]
    r = evaluate(rows, scanner=fake_scan, lexicon_version="t")
    assert r.thresholds["concern"] == Counts(tp=1, fp=1, fn=1, tn=0)


def test_categories_are_scored_only_on_rows_that_carry_them() -> None:
    rows = [
        ("page me", "high", ["suicide"]),
        ("urgent", "imminent", ["suicide"]),
        ("fine", "none", []),
        ("page me", "high"),
    ]
    r = evaluate(rows, scanner=fake_scan, lexicon_version="t")
    assert r.categories["suicide"] == Counts(tp=1, fp=0, fn=1, tn=1)
    assert r.categories["overdose_intent"] == Counts(tp=0, fp=1, fn=0, tn=2)


@pytest.mark.parametrize("row", [("fine", "maybe"), ("fine", "none", ["not_a_category"])], ids=["label", "category"])
def test_unknown_labels_are_refused(row: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="unknown"):
        evaluate([row], scanner=fake_scan, lexicon_version="t")  # type: ignore[list-item]


def test_report_never_contains_message_text() -> None:
    rows = [("page me", "high", ["suicide"]), ("fine", "none")]
    text = format_report(evaluate(rows, scanner=fake_scan, lexicon_version="t"))
    assert "page me" not in text and "fine " not in text
    assert "crisis (high+)" in text and "suicide" in text


def test_real_detector_end_to_end() -> None:
    rows = [
        ("i want to die tonight", "imminent", ["suicide"]),
        ("I overdosed twice before I got clean", "none", []),
        ("this group saved my life", "none"),
        ("nobody would miss me", "crisis"),
    ]
    r = evaluate(rows)
    assert r.crisis.recall == 1.0
    assert r.crisis.false_alarm_rate == 0.0


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_main_prints_a_report_and_skips_bad_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        tmp_path,
        [
            json.dumps({"text": "i want to die tonight", "label": "crisis"}),
            "{broken",
            json.dumps({"text": "see you next week", "label": "none", "categories": []}),
        ],
    )
    assert main([str(path)]) == 0
    out, err = capsys.readouterr()
    assert "2 messages" in out
    assert "line 2" in err
    assert "want to die" not in out + err


def test_main_fails_when_a_target_is_missed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, [json.dumps({"text": "hello there", "label": "high"})])
    assert main([str(path), "--min-recall", "0.95", "--list-errors"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "rows: 1" in out


def test_main_reports_a_missing_file(tmp_path: Path) -> None:
    assert main([str(tmp_path / "nope.jsonl")]) == 2
