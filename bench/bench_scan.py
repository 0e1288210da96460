"""Benchmark the crisis detector against a one-big-regex baseline measured in the same run.

Run on demand: .venv/bin/python -m bench.bench_scan [--short N] [--long N]

Rows:
- scan(): the whole detector (normalise, automaton, rules).
- normalise + automaton: the matching stage alone.
- normalise + big regex: the baseline, one regex alternation over the same phrases as the
  automaton (longest first, whole words), on the same normalised text; matching only, no rules.
Targets: scan() p99 <= 100 us on a short (~80 char) message and <= 1 ms on 2,000 chars.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable

from moderation.scanning import Lexicon, load_lexicon, normalize, scan

# Short messages written for the benchmark: a mix of crisis, hard negatives and everyday chat.
SHORT = [
    "I overdosed twice before I got clean, today is 3 years. Thank you all for being here.",
    "i cant do this anymore, the pills are in front of me and nobody would even miss me",
    "Killing it at work this week! Dying to see my kids at the weekend, 45 days clean.",
    "have you had thoughts of ending your life? you can talk to me, i'm here for you always",
    "mar jaana chahta hoon yaar, sab khatam, aaj raat goli kha lunga, koi yaad nahi karega",
    "ami ar bachte chai na, aj rate nijeke sesh kore debo, sobai bhalo theko, khoma kore dio",
    "he's hitting me right now and he has a knife, im hiding in the bathroom please help me",
    "Always carry naloxone and test strips, never use alone. Stay safe out there everyone!",
    "I K1LL MYS3LF SOOOOON 💊💊💊 all of them tonight, thank you for everything, goodbye",
    "my sponsor says when you feel like using call someone first, it honestly saved my life",
    "relapsed last night after 90 days, feeling so ashamed but i'm back at a meeting today",
    "hes not breathing and his lips are turning blue, i gave narcan, someone call ambulance",
]


def _long_messages() -> list[str]:
    out = []
    for i in range(len(SHORT)):
        text = ""
        j = i
        while len(text) < 2000:
            text += SHORT[j % len(SHORT)] + " "
            j += 1
        out.append(text[:2000])
    return out


def _baseline(lex: Lexicon) -> Callable[[str], int]:
    phrases = sorted((k for k in lex.keys if k), key=len, reverse=True)
    pattern = re.compile(r"(?<!\S)(?:" + "|".join(map(re.escape, phrases)) + r")(?!\S)")

    def run(text: str) -> int:
        return sum(1 for _ in pattern.finditer(normalize(text, lex)))

    return run


def _automaton_only(lex: Lexicon) -> Callable[[str], int]:
    def run(text: str) -> int:
        return sum(1 for _ in lex.automaton.iter(" " + normalize(text, lex) + " "))

    return run


def _measure(fn: Callable[[str], object], texts: list[str], n: int) -> list[float]:
    for t in texts:
        fn(t)  # warm caches
    samples: list[float] = []
    clock = time.perf_counter_ns
    k = len(texts)
    for i in range(n):
        t = texts[i % k]
        t0 = clock()
        fn(t)
        samples.append((clock() - t0) / 1000.0)
    return samples


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def main(argv: list[str] | None = None) -> int:
    """Print p50/p99 latency and throughput for short and 2,000-char messages."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scan", description=main.__doc__)
    parser.add_argument("--short", type=int, default=20000, help="samples for short messages")
    parser.add_argument("--long", type=int, default=3000, help="samples for 2,000-char messages")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    lex = load_lexicon()
    load_ms = (time.perf_counter() - t0) * 1000
    short = SHORT
    long = _long_messages()
    t0 = time.perf_counter()
    base = _baseline(lex)
    base("warm up the regex")
    regex_compile_ms = (time.perf_counter() - t0) * 1000

    def ours(text: str) -> object:
        return scan(text, lex)

    runs = [("scan()", ours), ("normalise + automaton", _automaton_only(lex)), ("normalise + big regex", base)]
    avg_short = statistics.mean(len(t) for t in short)
    print(
        f"crisis detector benchmark: lexicon {lex.version}, {len(lex.keys)} phrases "
        f"(lexicon load {load_ms:.0f} ms, regex build {regex_compile_ms:.0f} ms)"
    )
    load1, _, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load1:.2f} (p99 is only meaningful on an idle machine)")
    print(f"short messages: {len(short)} texts, mean {avg_short:.0f} chars; long: {len(long)} texts, 2000 chars")
    print()
    header = f"{'what':<24}{'size':>7}{'p50 us':>10}{'p99 us':>10}{'scans/s':>11}{'vs regex p50':>14}"
    print(header)
    print("-" * len(header))
    results: dict[tuple[str, str], list[float]] = {}
    for size, texts, n in (("short", short, args.short), ("2000", long, args.long)):
        for name, fn in runs:
            results[(name, size)] = _measure(fn, texts, n)
        base_p50 = _pct(results[("normalise + big regex", size)], 0.5)
        for name, _ in runs:
            s = results[(name, size)]
            p50, p99 = _pct(s, 0.5), _pct(s, 0.99)
            rate = 1e6 / statistics.mean(s)
            print(f"{name:<24}{size:>7}{p50:>10.1f}{p99:>10.1f}{rate:>11,.0f}{base_p50 / p50:>13.1f}x")
    print()
    ok_short = _pct(results[("scan()", "short")], 0.99) <= 100
    ok_long = _pct(results[("scan()", "2000")], 0.99) <= 1000
    print(f"target p99 <= 100 us short: {'met' if ok_short else 'MISSED'}; <= 1 ms at 2000 chars: "
          f"{'met' if ok_long else 'MISSED'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
