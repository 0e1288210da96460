"""Assess one chat message for crisis language (pure Python: no Django imports).

The pipeline has three steps, each linear in the length of the message:

1. Normalise: NFKD, casefold, drop zero-width/bidi/combining marks (zalgo), map confusable
   Cyrillic/Greek letters and meaningful emoji, squeeze letter runs to one letter, expand chat
   shorthand, undo leetspeak in tokens that mix letters and digits, and turn numbers into class
   tokens (NUM, DOSE, CLOCK, ORD).
2. Match: one pass of an Aho-Corasick automaton over the space-joined tokens finds every
   lexicon phrase (risk phrases and context cues alike) on whole-word boundaries.
3. Decide: small rules over the hits within a sentence (negation, past tense, who it is about,
   questions to others, quotes and media, conditionals, idioms), then escalation (ideation plus
   means or a time is imminent) and combinations of weak signs (a goodbye plus hopelessness).

The lexicon (moderation/lexicon.toml) is data, versioned and reviewed like code. What to *do*
about an assessment lives in moderation/services.py, not here.
"""

# ruff: noqa: RUF001  (the confusables table maps look-alike letters on purpose)
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tomllib
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import product
from pathlib import Path
from typing import Any, Final

import ahocorasick

__all__ = [
    "CATEGORIES",
    "DEFAULT_LEXICON_PATH",
    "Assessment",
    "Level",
    "Lexicon",
    "LexiconError",
    "load_lexicon",
    "main",
    "normalize",
    "scan",
]

DEFAULT_LEXICON_PATH: Final = Path(__file__).with_name("lexicon.toml")

CATEGORIES: Final = (
    "abuse_at_home",
    "medical_emergency",
    "overdose_intent",
    "self_harm",
    "suicide",
    "using_now",
    "violence_to_others",
)


class Level(StrEnum):
    """How urgent a message is; orderable (NONE < CONCERN < HIGH < IMMINENT)."""

    NONE = "none"
    CONCERN = "concern"
    HIGH = "high"
    IMMINENT = "imminent"

    @property
    def rank(self) -> int:
        """Return 0 for NONE up to 3 for IMMINENT."""
        return _RANKS[self.value]

    def __lt__(self, other: str) -> bool:
        if isinstance(other, Level):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: str) -> bool:
        if isinstance(other, Level):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: str) -> bool:
        if isinstance(other, Level):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: str) -> bool:
        if isinstance(other, Level):
            return self.rank >= other.rank
        return NotImplemented


_RANKS: Final = {"none": 0, "concern": 1, "high": 2, "imminent": 3}
_BY_RANK: Final = (Level.NONE, Level.CONCERN, Level.HIGH, Level.IMMINENT)


@dataclass(frozen=True, slots=True)
class Assessment:
    """The detector's verdict on one message: level, categories and the evidence that matched."""

    level: Level
    categories: tuple[str, ...]
    evidence: tuple[str, ...]

    @property
    def is_crisis(self) -> bool:
        """Return True when someone should be paged (HIGH or IMMINENT)."""
        return self.level is Level.HIGH or self.level is Level.IMMINENT


class LexiconError(ValueError):
    """The lexicon file is malformed or a rule lacks what review requires."""


# --- lexicon ---------------------------------------------------------------------------------

_ROLES: Final = frozenset(
    {
        "risk",
        "weak",
        "plan",
        "past",
        "present",
        "negation",
        "postneg",
        "hypothetical",
        "hyp_end",
        "media",
        "support",
        "idiom",
        "continuity",
        "resolved",
        "pronoun",
        "question",
        "clause",
    }
)
_PERSONS: Final = frozenset({"first", "second", "third", "any"})
_CLASS_TOKENS: Final = frozenset({"NUM", "DOSE", "CLOCK", "ORD"})
_MAX_FORMS: Final = 512


@dataclass(frozen=True, slots=True)
class Cue:
    """One lexicon phrase after expansion, with the rule it belongs to."""

    rule: str
    role: str
    phrase: str
    ntoks: int
    category: str = ""
    level: Level = Level.NONE
    person: str = "any"
    group: str = ""
    rank: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Lexicon:
    """A compiled lexicon: the automaton over every phrase plus the normalisation tables."""

    version: str
    rule_ids: tuple[str, ...]
    keys: tuple[str, ...]
    table: _NonAscii = field(repr=False)
    shorthand: Mapping[str, str] = field(repr=False)
    negation_gap: frozenset[str] = field(repr=False)
    automaton: Any = field(repr=False)


def _build_table(emoji: Mapping[str, str]) -> _NonAscii:
    """Return the str.translate table: deletions, confusables, punctuation and emoji."""
    table = _NonAscii()
    deleted = [
        (0x0300, 0x036F),  # combining diacritics (accents, zalgo)
        (0x0483, 0x0489),  # Cyrillic combining marks
        (0x1AB0, 0x1AFF),
        (0x1DC0, 0x1DFF),
        (0x20D0, 0x20FF),
        (0xFE20, 0xFE2F),
        (0x200B, 0x200F),  # zero-width space/joiners, LRM/RLM
        (0x202A, 0x202E),  # bidi embeddings and overrides
        (0x2060, 0x2069),  # word joiner, invisible operators, bidi isolates
        (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
        (0xE0000, 0xE007F),  # tag characters
        (0xE0100, 0xE01EF),
    ]
    for lo, hi in deleted:
        for cp in range(lo, hi + 1):
            table[cp] = None
    for cp in (0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0):
        table[cp] = None
    # Confusable letters (after casefold) that people and spammers use to dodge filters.
    confusables = {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
        "ԛ": "q", "ԝ": "w", "ӏ": "l", "һ": "h", "ɡ": "g", "ɑ": "a", "ɩ": "i", "ʟ": "l", "ո": "n",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ς": "s", "ω": "w", "γ": "y", "ɪ": "i", "ᴋ": "k", "ʏ": "y",
        "ᴅ": "d", "ᴇ": "e", "ʜ": "h", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴍ": "m", "ɴ": "n",
        "ᴏ": "o", "ᴘ": "p", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ꜰ": "f", "ɢ": "g", "ᴊ": "j", "ᴡ": "w",
        "ᴠ": "v", "ᴢ": "z", "ǫ": "q", "ʍ": "w",
    }  # fmt: skip
    for src, dst in confusables.items():
        if len(src) == 1:
            table[ord(src)] = dst
    punctuation: dict[str, str | None] = {
        "\u2018": None, "\u2019": None, "\u00b4": None, "\u02bc": None,
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2026": ".", "\u0964": ".", "\u0965": ".", "\u061f": "?",
        "\u2010": " ", "\u2011": " ", "\u2012": " ", "\u2013": " ", "\u2014": " ",
    }  # fmt: skip
    for mark, replacement in punctuation.items():
        table[ord(mark)] = replacement
    # ASCII: map one character to one character (or delete) so str.translate keeps its fast
    # path. Apostrophes go (I'm -> im); other punctuation becomes a space, except what the
    # tokenizer needs: . ? , ; ! newline and double quotes, and @ $ | * for leetspeak.
    for cp in range(128):
        ch = chr(cp)
        if ch.isalnum() or ch in ' .?,;!\n"@$|*':
            table[cp] = ch  # listed, so the space default for unknown characters never applies
        else:
            table[cp] = None if ch in "'`" else " "
    for glyph, word in emoji.items():
        base = [c for c in glyph if ord(c) not in table]
        if len(base) != 1:
            raise LexiconError(f"emoji key {glyph!r} must be one character")
        table[ord(base[0])] = f" {word} "
    return table


class _NonAscii(dict[int, str | None]):
    """A translate table for non-ASCII runs: anything unlisted becomes a space."""

    def __missing__(self, key: int) -> str:
        return " "


# Letters repeated (sooooo, diieee) squeeze to one: both the text and the phrases go through it.
# Done with plain str.replace per letter (C speed, no regex); each pass halves a run.
_PAIRS: Final = tuple((c + c, c) for c in "abcdefghijklmnopqrstuvwxyz")
_NON_ASCII_RUN: Final = re.compile(r"[^\x00-\x7f]+")
# ! | * inside a word are leetspeak (k!ll, k*ll); outside a word, ! ends a sentence.
_INWORD_SYMBOL: Final = re.compile(r"(?<=[a-z0-9])[!|*](?=[a-z0-9])")
_INWORD_LEET: Final = {"!": "i", "|": "l", "*": "i"}
_MIXED_CHARS: Final = re.compile(r"[0-9@$!|*]")
_NUMBER: Final = re.compile(r"\$?[0-9]+([a-z]*)")
_LEET: Final = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "9": "g",
                              "@": "a", "$": "s", "!": "i", "|": "l", "*": "i"})  # fmt: skip
_UNITS: Final[Mapping[str, str]] = {
    **{u: "DOSE" for u in ("mg", "mgs", "ml", "mcg", "ug", "g", "gm", "gms", "gram", "grams")},
    **{u: "CLOCK" for u in ("am", "pm")},
    **{u: "ORD" for u in ("st", "nd", "rd", "th")},
    "x": "NUM times",
    **{u: "NUM years" for u in ("y", "yr", "yrs", "year", "years")},
    **{u: "NUM months" for u in ("mo", "mos", "month", "months")},
    **{u: "NUM hours" for u in ("h", "hr", "hrs", "hour", "hours")},
    **{u: "NUM minutes" for u in ("min", "mins", "minute", "minutes")},
    **{u: "NUM days" for u in ("d", "day", "days")},
}
# Sentence ends and the other punctuation the rules use become tokens of their own.
_SPACED: Final = ((".", " . "), ("!", " . "), (";", " . "), ("\n", " . "), ("?", " ? "), (",", " , "), ('"', ' " '))
_PUNCT_TOKENS: Final = frozenset({".", "?", ",", '"'})
# Built-in structural cues: sentence ends and quotation marks.
_STRUCTURE: Final = (
    Cue(rule="structure.stop", role="boundary", phrase=".", ntoks=1),
    Cue(rule="structure.question_mark", role="boundary", phrase="?", ntoks=1, group="question"),
    Cue(rule="structure.quote", role="quote", phrase='"', ntoks=1),
)
_BRACES: Final = re.compile(r"\{([^{}]*)\}")


def _squeeze(s: str) -> str:
    for pair, single in _PAIRS:
        while pair in s:
            s = s.replace(pair, single)
    return s


def _mixed(tok: str, shorthand: Mapping[str, str]) -> str:
    """Return the word(s) for a token that mixes letters with digits or symbols."""
    rep = shorthand.get(tok)
    if rep is not None:
        return rep
    m = _NUMBER.fullmatch(tok)
    if m is not None:
        unit = m.group(1)
        return _UNITS.get(unit, "NUM") if unit else "NUM"
    word = _squeeze(tok.translate(_LEET))
    return shorthand.get(word, word)


def _normal_text(text: str, table: _NonAscii, shorthand: Mapping[str, str]) -> str:
    """Return text normalised into space-separated tokens (see the module docstring)."""
    s = text
    if not s.isascii():
        s = unicodedata.normalize("NFKD", s)
    s = s.casefold()
    if not s.isascii():
        s = _NON_ASCII_RUN.sub(lambda m: m.group().translate(table), s)
    s = _squeeze(s.translate(table))
    if "!" in s or "|" in s or "*" in s:
        s = _INWORD_SYMBOL.sub(lambda m: _INWORD_LEET[m.group()], s)
        s = s.replace("|", " ").replace("*", " ")
    for ch, spaced in _SPACED:
        if ch in s:
            s = s.replace(ch, spaced)
    toks = s.split()
    get = shorthand.get
    if _MIXED_CHARS.search(s) is None:
        return " ".join([get(t, t) for t in toks])
    return " ".join([get(t, t) if t.isalpha() or t in _PUNCT_TOKENS else _mixed(t, shorthand) for t in toks])


def _tokens(text: str, table: _NonAscii, shorthand: Mapping[str, str]) -> list[str]:
    """Return the normalised tokens of text."""
    return _normal_text(text, table, shorthand).split()


def normalize(text: str, lexicon: Lexicon | None = None) -> str:
    """Return text as the automaton sees it: normalised tokens joined by single spaces."""
    lex = lexicon if lexicon is not None else load_lexicon()
    return _normal_text(text, lex.table, lex.shorthand)


def _expand(phrase: str) -> list[str]:
    """Return every form of a phrase written with {a|b} alternatives."""
    parts = _BRACES.split(phrase)
    options = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(parts)]
    if math.prod(len(o) for o in options) > _MAX_FORMS:
        raise LexiconError(f"phrase {phrase!r} expands to more than {_MAX_FORMS} forms")
    forms = [" ".join("".join(choice).split()) for choice in product(*options)]
    return [f for f in forms if f]


def _phrase_tokens(phrase: str, table: _NonAscii, shorthand: Mapping[str, str]) -> list[tuple[str, ...]]:
    """Normalise one phrase like a message; 'to'/'for' also match a bare number ('want 2 die')."""
    toks: list[str] = []
    for word in phrase.split():
        if word in _CLASS_TOKENS:
            toks.append(word)
        else:
            toks.extend(_tokens(word, table, shorthand))
    slots = [(t, "NUM") if t in ("to", "for") else (t,) for t in toks]
    if math.prod(len(s) for s in slots) > _MAX_FORMS:
        return [tuple(toks)]
    return [tuple(c) for c in product(*slots)]


def _require(rule: Mapping[str, Any], key: str, where: str) -> str:
    value = rule.get(key)
    if not isinstance(value, str) or not value.strip():
        raise LexiconError(f"{where}: '{key}' is required and must be a non-empty string")
    return value


def _compile(data: Mapping[str, Any]) -> Lexicon:
    """Validate parsed lexicon data and build the automaton."""
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise LexiconError("the lexicon needs a 'version' string")
    norm = data.get("normalize", {})
    emoji = {str(k): str(v) for k, v in norm.get("emoji", {}).items()}
    table = _build_table(emoji)
    # Shorthand keys are matched after squeezing, so squeeze them too; values are phrases.
    raw_short = {str(k): str(v) for k, v in norm.get("shorthand", {}).items()}
    shorthand: dict[str, str] = {}
    for key, value in raw_short.items():
        key_norm = _squeeze(unicodedata.normalize("NFKD", key).casefold().translate(table))
        shorthand[key_norm] = _normal_text(value, table, {})
    gap = frozenset(t for w in norm.get("negation_gap", []) for t in _tokens(str(w), table, shorthand))

    entries: dict[str, list[Cue]] = {}
    rule_ids: list[str] = []
    rules = data.get("rule", [])
    if not isinstance(rules, list) or not rules:
        raise LexiconError("the lexicon has no [[rule]] tables")
    for n, rule in enumerate(rules):
        where = f"rule #{n + 1}"
        rid = _require(rule, "id", where)
        where = f"rule {rid!r}"
        if rid in rule_ids:
            raise LexiconError(f"{where}: duplicate id")
        role = _require(rule, "role", where)
        if role not in _ROLES:
            raise LexiconError(f"{where}: unknown role {role!r}")
        _require(rule, "why", where)
        category = str(rule.get("category", ""))
        if role in ("risk", "weak") and category not in CATEGORIES:
            raise LexiconError(f"{where}: category must be one of {', '.join(CATEGORIES)}")
        level = Level.NONE
        if role == "risk":
            try:
                level = Level(_require(rule, "level", where))
            except ValueError as exc:
                raise LexiconError(f"{where}: bad level") from exc
            if level is Level.NONE:
                raise LexiconError(f"{where}: a risk rule needs a level above none")
        person = str(rule.get("person", "any"))
        if person not in _PERSONS:
            raise LexiconError(f"{where}: unknown person {person!r}")
        group = str(rule.get("group", ""))
        if role == "weak" and group not in ("distress", "farewell", "overdose"):
            raise LexiconError(f"{where}: a weak rule needs group distress, farewell or overdose")
        if role == "plan" and group not in ("means", "time"):
            raise LexiconError(f"{where}: a plan rule needs group means or time")
        phrases = rule.get("phrases")
        if not isinstance(phrases, list) or not phrases:
            raise LexiconError(f"{where}: needs a non-empty 'phrases' list")
        rule_ids.append(rid)
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise LexiconError(f"{where}: phrases must be strings")
            for form in _expand(phrase):
                for toks in _phrase_tokens(form, table, shorthand):
                    if not toks:
                        continue
                    cue = Cue(rid, role, form, len(toks), category, level, person, group, level.rank)
                    bucket = entries.setdefault(" " + " ".join(toks) + " ", [])
                    # Spellings that normalise alike ('jaana'/'jana') collapse to one cue per rule.
                    if not any(c.rule == rid for c in bucket):
                        bucket.append(cue)
    for cue in _STRUCTURE:
        entries.setdefault(f" {cue.phrase} ", []).append(cue)

    automaton = ahocorasick.Automaton()
    for key, cues in entries.items():
        automaton.add_word(key, tuple(cues))
    automaton.make_automaton()
    return Lexicon(
        version=version,
        rule_ids=tuple(rule_ids),
        keys=tuple(k.strip() for k in entries),
        table=table,
        shorthand=shorthand,
        negation_gap=gap,
        automaton=automaton,
    )


_DEFAULT: Lexicon | None = None


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Load and compile a lexicon file; the default one is loaded once and cached."""
    global _DEFAULT
    if path is None:
        if _DEFAULT is None:
            _DEFAULT = load_lexicon(DEFAULT_LEXICON_PATH)
        return _DEFAULT
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise LexiconError(f"{path}: {exc}") from exc
    return _compile(data)


def compile_lexicon(data: Mapping[str, Any]) -> Lexicon:
    """Compile lexicon data already parsed (tests build small lexicons this way)."""
    return _compile(data)


# --- rules -----------------------------------------------------------------------------------

# Categories where the person at risk is not the grammatical subject ("he is hitting me") or
# where it is an emergency whoever it is ("my friend is not breathing").
_ANY_PERSON_CATEGORIES: Final = frozenset({"medical_emergency", "abuse_at_home"})
# Categories whose HIGH statements become IMMINENT with a means or a time.
_ESCALATING: Final = frozenset({"suicide", "self_harm", "overdose_intent", "violence_to_others", "abuse_at_home"})
_PAST_WINDOW: Final = 8
_PRESENT_WINDOW: Final = 8
_NEGATION_GAP_MAX: Final = 4
_EVIDENCE_MAX: Final = 16
# How close (in tokens) a means must be to hopelessness or to "all of them" to combine with it:
# in a chat message that is the same thought; across a long post it is usually not.
_MEANS_WINDOW: Final = {"distress": 20, "overdose": 8}
_NONE: Final = Assessment(Level.NONE, (), ())
# The rules work on integer ranks (cheaper than comparing enum members in the hot path).
_NONE_R: Final = 0
_CONCERN: Final = 1
_HIGH: Final = 2
_IMMINENT: Final = 3


@dataclass(slots=True)
class _Hit:
    cue: Cue
    start: int
    end: int
    seg: int


class _Spans:
    """Token spans of one kind of cue, for nearest-neighbour lookups in O(log n)."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.ends: list[int] = []
        self.starts: list[int] = []

    def add(self, start: int, end: int) -> None:
        self.ends.append(end)  # hits arrive ordered by end
        self.starts.append(start)

    def distance(self, start: int, end: int, limit: int) -> int | None:
        """Return the distance to the nearest span that does not overlap [start, end)."""
        best: int | None = None
        i = bisect_right(self.ends, start) - 1
        if i >= 0:
            best = start - self.ends[i]
        if len(self.starts) > 1 and self.starts[-1] < self.starts[-2]:
            self.starts.sort()
        j = bisect_left(self.starts, end)
        if j < len(self.starts):
            d = self.starts[j] - end
            if best is None or d < best:
                best = d
        if best is None or best > limit:
            return None
        return best


@dataclass(slots=True)
class _Context:
    """Everything the rules need to know about a message after the automaton pass."""

    toks: list[str]
    risks: list[_Hit] = field(default_factory=list)
    weaks: list[_Hit] = field(default_factory=list)
    plans: list[_Hit] = field(default_factory=list)
    negation_ends: list[int] = field(default_factory=list)
    postneg_starts: set[int] = field(default_factory=set)
    pronoun_ends: list[int] = field(default_factory=list)
    pronouns: list[tuple[str, int]] = field(default_factory=list)
    past: dict[int, _Spans] = field(default_factory=dict)
    present: dict[int, _Spans] = field(default_factory=dict)
    hyp_ends: list[int] = field(default_factory=list)
    hyp_segs: list[int] = field(default_factory=list)
    clause_stops: list[int] = field(default_factory=list)
    quotes: list[int] = field(default_factory=list)
    idiom_tokens: set[int] = field(default_factory=set)
    media_segs: set[int] = field(default_factory=set)
    support_segs: set[int] = field(default_factory=set)
    question_segs: set[int] = field(default_factory=set)
    continuity: bool = False
    resolved: bool = False


def _collect(toks: list[str], joined: str, lex: Lexicon) -> _Context:
    """Run the automaton once and sort every hit by role."""
    ctx = _Context(toks)
    seg = 0
    spaces = 0
    prev = 0
    count = joined.count
    for e, cues in lex.automaton.iter(joined):
        spaces += count(" ", prev, e)
        prev = e
        end = spaces
        for cue in cues:
            role = cue.role
            start = end - cue.ntoks
            if role == "risk":
                ctx.risks.append(_Hit(cue, start, end, seg))
            elif role == "boundary":
                if cue.group == "question":
                    ctx.question_segs.add(seg)
                seg += 1
            elif role == "clause":
                seg += 1
            elif role == "pronoun":
                ctx.pronoun_ends.append(end)
                ctx.pronouns.append((cue.person, seg))
            elif role == "negation":
                ctx.negation_ends.append(end)
            elif role == "postneg":
                ctx.postneg_starts.add(start)
            elif role == "past":
                ctx.past.setdefault(seg, _Spans()).add(start, end)
            elif role == "present":
                ctx.present.setdefault(seg, _Spans()).add(start, end)
            elif role == "weak":
                ctx.weaks.append(_Hit(cue, start, end, seg))
            elif role == "plan":
                ctx.plans.append(_Hit(cue, start, end, seg))
            elif role == "idiom":
                ctx.idiom_tokens.update(range(start, end))
            elif role == "hyp_end":
                ctx.clause_stops.append(start)
            elif role == "hypothetical":
                ctx.hyp_ends.append(end)
                ctx.hyp_segs.append(seg)
            elif role == "quote":
                ctx.quotes.append(start)
            elif role == "media":
                ctx.media_segs.add(seg)
            elif role == "support":
                ctx.support_segs.add(seg)
            elif role == "question":
                ctx.question_segs.add(seg)
            elif role == "continuity":
                ctx.continuity = True
            elif role == "resolved":
                ctx.resolved = True
    if ctx.clause_stops and any(a > b for a, b in zip(ctx.clause_stops, ctx.clause_stops[1:], strict=False)):
        ctx.clause_stops.sort()
    return ctx


def _judge(hit: _Hit, ctx: _Context, gap: frozenset[str]) -> tuple[int, str]:
    """Return the level of one risk/weak/plan hit in its context, and a note on why it changed."""
    cue = hit.cue
    start, end, seg = hit.start, hit.end, hit.seg
    idioms = ctx.idiom_tokens
    if idioms and any(t in idioms for t in range(start, end)):
        return _NONE_R, "idiom"
    # Negation just before, with only filler words between ("not really going to ...").
    ends = ctx.negation_ends
    if ends:
        i = bisect_right(ends, start) - 1
        if i >= 0 and start - ends[i] <= _NEGATION_GAP_MAX:
            between = ctx.toks[ends[i] : start]
            if all(t in gap for t in between):
                return _NONE_R, "negated"
    if end in ctx.postneg_starts:
        return _NONE_R, "negated"

    level = cue.rank if cue.role == "risk" else _HIGH
    base = level
    notes: list[str] = []

    person = cue.person
    if person == "any" and cue.role == "risk":
        person = "first"
        j = bisect_right(ctx.pronoun_ends, start) - 1
        if j >= 0 and ctx.pronouns[j][1] == seg:
            person = ctx.pronouns[j][0]

    quoted = False
    if ctx.quotes and len(ctx.quotes) % 2 == 0:
        quoted = bisect_left(ctx.quotes, start) % 2 == 1
    if seg in ctx.media_segs or quoted:
        level = min(level, _CONCERN) if person == "first" else _NONE_R
        notes.append("quoted")
    if person == "second":
        level = _NONE_R if seg in ctx.question_segs else min(level, _CONCERN)
        notes.append("to-other")
    elif person == "third" and cue.role == "risk" and cue.category not in _ANY_PERSON_CATEGORIES and base != _IMMINENT:
        level = min(level, _CONCERN)
        notes.append("third-person")
    if seg in ctx.support_segs and person != "first" and base != _IMMINENT:
        level = _NONE_R
        notes.append("support")

    past = ctx.past.get(seg)
    if past is not None:
        dp = past.distance(start, end, _PAST_WINDOW)
        if dp is not None:
            present = ctx.present.get(seg)
            dn = present.distance(start, end, _PRESENT_WINDOW) if present is not None else None
            if dn is None or dp < dn:
                level = _CONCERN if level >= _HIGH else _NONE_R
                notes.append("past")

    if ctx.hyp_ends:
        k = bisect_right(ctx.hyp_ends, start) - 1
        if k >= 0 and ctx.hyp_segs[k] == seg:
            h_end = ctx.hyp_ends[k]
            stops = ctx.clause_stops
            m = bisect_left(stops, h_end)
            if m == len(stops) or stops[m] >= start:
                level = min(level, _CONCERN)
                notes.append("conditional")

    if ctx.resolved and base == _IMMINENT:
        level = min(level, _CONCERN)
        notes.append("resolved")
    return level, ",".join(notes)


def _longest(hits: list[_Hit]) -> list[_Hit]:
    """Drop risk hits inside a longer hit of the same category ('had seizures' over 'seizures')."""
    if len(hits) < 2:
        return hits
    ordered = sorted(hits, key=lambda h: (h.cue.category, h.start, -h.end))
    kept: list[_Hit] = []
    cover_cat = ""
    cover_start = cover_end = -1
    for h in ordered:
        cat = h.cue.category
        if cat == cover_cat and h.end <= cover_end and (h.start, h.end) != (cover_start, cover_end):
            continue
        if cat != cover_cat or h.end > cover_end:
            cover_cat, cover_start, cover_end = cat, h.start, h.end
        kept.append(h)
    kept.sort(key=lambda h: (h.end, h.start))
    return kept


def _within(starts: list[int], pos: int, window: int) -> bool:
    """Return True if a sorted position list has an entry within window tokens of pos."""
    i = bisect_left(starts, pos - window)
    return i < len(starts) and starts[i] <= pos + window


def _inside(inner: _Hit, outer: _Hit) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def _escalation(escalating: list[_Hit], plans: list[_Hit]) -> Cue | None:
    """Return the plan cue that makes a HIGH statement imminent, if any.

    A means named inside the statement itself ('the pills are in front of me') does not
    escalate it on its own; a time does ('end it tonight').
    """
    if not escalating or not plans:
        return None
    first = escalating[0]
    for p in plans:
        if p.cue.group == "time" or not _inside(p, first):
            return p.cue
    for e in escalating[1:]:
        if not _inside(plans[0], e):
            return plans[0].cue
    return None


def _describe(cue: Cue, note: str) -> str:
    return f"{cue.rule}:{cue.phrase}" + (f" [{note}]" if note else "")


def _decide(ctx: _Context, gap: frozenset[str]) -> Assessment:
    """Combine judged hits into one assessment."""
    evidence: list[str] = []
    categories: set[str] = set()
    level = _NONE_R
    escalating: list[_Hit] = []

    for hit in _longest(ctx.risks):
        lvl, note = _judge(hit, ctx, gap)
        evidence.append(_describe(hit.cue, note))
        if lvl == _NONE_R:
            continue
        categories.add(hit.cue.category)
        if lvl > level:
            level = lvl
        if lvl == _HIGH and hit.cue.category in _ESCALATING:
            escalating.append(hit)

    plans: list[_Hit] = []
    # Means and times only matter to escalate a HIGH statement or to combine with weak signs.
    for hit in ctx.plans if (escalating or ctx.weaks) else ():
        lvl, _ = _judge(hit, ctx, gap)
        if lvl >= _HIGH:
            plans.append(hit)

    groups: dict[str, dict[str, Cue]] = {"distress": {}, "farewell": {}, "overdose": {}}
    near: dict[str, bool] = {"distress": False, "overdose": False}
    means_starts = sorted(h.start for h in plans if h.cue.group == "means")
    for hit in ctx.weaks:
        lvl, note = _judge(hit, ctx, gap)
        if lvl < _HIGH:
            continue
        group = hit.cue.group
        groups[group].setdefault(hit.cue.phrase, hit.cue)
        if group in near and not near[group]:
            near[group] = _within(means_starts, hit.start, _MEANS_WINDOW[group])
    distress, farewell, overdose = groups["distress"], groups["farewell"], groups["overdose"]
    if ctx.continuity:
        farewell = {}
    combo: list[tuple[str, str]] = []
    if len(farewell) >= 2:
        combo.append(("suicide", "farewell+farewell"))
    if farewell and distress:
        combo.append(("suicide", "farewell+distress"))
    if near["distress"]:
        combo.append(("suicide", "distress+means"))
    if len(distress) >= 3:
        combo.append(("suicide", "distress x3"))
    if near["overdose"]:
        combo.append(("overdose_intent", "all-of-them+means"))
    for cues in (distress, farewell, overdose):
        for cue in cues.values():
            evidence.append(_describe(cue, ""))
    if combo:
        for category, name in combo:
            categories.add(category)
            evidence.append(f"combo:{name}")
        if level < _HIGH:
            level = _HIGH
    elif distress or farewell:
        categories.add("suicide")
        if level < _CONCERN:
            level = _CONCERN

    trigger = _escalation(escalating, plans) if level == _HIGH else None
    if trigger is not None:
        level = _IMMINENT
        evidence.append(f"escalated:{trigger.rule}:{trigger.phrase}")

    if level == _NONE_R:
        categories.clear()
    return Assessment(
        level=_BY_RANK[level],
        categories=tuple(sorted(categories)),
        evidence=tuple(dict.fromkeys(evidence))[:_EVIDENCE_MAX],
    )


def scan(text: str, lexicon: Lexicon | None = None) -> Assessment:
    """Assess one message for crisis language."""
    lex = lexicon if lexicon is not None else load_lexicon()
    norm = _normal_text(text, lex.table, lex.shorthand)
    if not norm:
        return _NONE
    ctx = _collect(norm.split(), f" {norm} ", lex)
    if not (ctx.risks or ctx.weaks):
        return _NONE
    return _decide(ctx, lex.negation_gap)


# --- command line ----------------------------------------------------------------------------


def _scan_lines(lines: Iterable[str], lex: Lexicon) -> Iterable[str]:
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield json.dumps({"error": f"invalid JSON: {exc.msg}"})
            continue
        text = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(text, str):
            yield json.dumps({"error": "expected an object with a string 'text'"})
            continue
        a = scan(text, lex)
        yield json.dumps({"level": a.level.value, "categories": list(a.categories), "evidence": list(a.evidence)})


def main(argv: Sequence[str] | None = None) -> int:
    """Read JSON lines {"text": ...} on stdin and write one assessment per line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m moderation.scanning", description=main.__doc__)
    parser.add_argument("--lexicon", type=Path, default=None, help="lexicon TOML (default: the bundled one)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    lex = load_lexicon(args.lexicon)
    for out in _scan_lines(sys.stdin, lex):
        sys.stdout.write(out + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
