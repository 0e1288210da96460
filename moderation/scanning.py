"""Assess one chat message for crisis language (pure Python: no Django imports).

The pipeline has three steps, each linear in the length of the message:

1. Normalise: NFKD, casefold, drop zero-width/bidi/combining marks (zalgo), map confusable
   Cyrillic/Greek letters and meaningful emoji, squeeze letter runs to one letter, expand chat
   shorthand, undo leetspeak in tokens that mix letters and digits, and turn numbers into class
   tokens (NUM, DOSE, CLOCK, ORD).
2. Match: each token is written as a short fixed-width code (a space and one or two
   characters), and one pass of an Aho-Corasick automaton over the codes finds every lexicon
   phrase (risk phrases and context cues alike) on whole-word boundaries; a hit's token
   position is its character position divided by the code width.
3. Decide: small rules over the hits within a sentence (negation, past tense, who it is about,
   questions to others, quotes and media, conditionals, idioms), then escalation (ideation plus
   means or a time is imminent) and combinations of weak signs (a goodbye plus hopelessness).

The lexicon (moderation/lexicon.toml) is data, versioned and reviewed like code. What to *do*
about an assessment lives in moderation/services.py, not here.
"""

# ruff: noqa: RUF001  (the confusables table maps look-alike letters on purpose)
from __future__ import annotations

import argparse
import codecs
import itertools
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
from itertools import filterfalse, product, repeat
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


@dataclass(frozen=True, slots=True)
class _Coding:
    """How a message's tokens are written for the automata: one fixed-width code per token.

    Every token becomes a space and `width` characters, so a hit ending at character e ends
    after token e // (width + 1): no counting of spaces per hit, and the coded text is shorter
    than the words. Tokens that appear in no phrase share one code that no key contains.
    """

    width: int
    codes: Mapping[str, str]  # every lexicon token, and every shorthand key (coded as its expansion)
    words: Mapping[str, str]  # lexicon tokens only: codes the words a mixed token turns into
    unknown: str
    gap: frozenset[str]  # the negation_gap words, coded (without the leading space)


@dataclass(frozen=True, slots=True, eq=False)
class Lexicon:
    """A compiled lexicon: the automaton over every phrase plus the normalisation tables."""

    version: str
    rule_ids: tuple[str, ...]
    keys: tuple[str, ...]
    table: _NonAscii = field(repr=False)
    shorthand: Mapping[str, str] = field(repr=False)
    negation_gap: frozenset[str] = field(repr=False)
    coding: _Coding = field(repr=False)
    # Keys are coded phrases (see _Coding), values (token count, ((role code, cue), ...)).
    automaton: Any = field(repr=False)
    # Only the phrases of risk and weak rules: finds out cheaply whether the rules need to run.
    trigger: Any = field(repr=False, default=None)


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
    for cp in range(128):
        table[cp] = _ascii_rule(chr(cp))  # listed, so the space default never applies to ASCII
    for glyph, word in emoji.items():
        base = [c for c in glyph if ord(c) not in table]
        if len(base) != 1:
            raise LexiconError(f"emoji key {glyph!r} must be one character")
        # Casefolded like the text around it (a word written 'Pill' would otherwise never match).
        table[ord(base[0])] = f" {word.casefold()} "
    _register(table)
    return table


def _ascii_rule(ch: str) -> str | None:
    """Return what an ASCII character becomes: itself, a space, or None to delete it.

    One character to one character (or none), so ASCII text can go through bytes.translate.
    Apostrophes go (I'm -> im); other punctuation becomes a space, except what the tokenizer
    needs: . ? , ; ! newline and double quotes, and @ $ | * for leetspeak.
    """
    if ch.isalnum() or ch in ' .?,;!\n"@$|*':
        return ch
    return None if ch in "'`" else " "


# The ASCII rule after lower-casing, as one bytes.translate table plus the bytes it deletes.
_ASCII_FOLD: Final = bytes(ord(_ascii_rule(chr(b).lower()) or " ") if b < 0x80 else 0x20 for b in range(256))
_ASCII_DELETE: Final = bytes(b for b in range(0x80) if _ascii_rule(chr(b).lower()) is None)


class _NonAscii(dict[int, str | None]):
    """A translate table for non-ASCII runs: anything unlisted becomes a space."""

    # Name of a codec error handler that normalises each run of non-ASCII characters and
    # translates it with this table (see _register); None when some replacement is not ASCII.
    errors: str | None = None

    def __missing__(self, key: int) -> str:
        return " "


# Up to this many non-ASCII characters, the error handler's call per run costs less than
# folding and translating the whole message.
_FEW_NON_ASCII: Final = 32


def _register(table: _NonAscii) -> None:
    """Let str.encode('ascii') normalise and translate each run of non-ASCII characters.

    The ASCII encoder copies ASCII at C speed and hands every maximal run of other characters
    to the handler, so NFKD, casefolding and the table touch only those runs: a message that
    is ASCII but for a few emoji costs little more than an ASCII one. This gives exactly what
    NFKD and casefold over the whole text would: ASCII characters decompose to themselves and
    never take part in the reordering of combining marks, and casefold maps each character on
    its own. Each table gets its own handler name (from its id: the codec registry keeps the
    table alive, so the id is never reused), so concurrent scans with different lexicons, or a
    second copy of this module, cannot mix tables.
    """
    if not all(v is None or v.isascii() for v in table.values()):
        return

    def handler(exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeEncodeError):
            raise exc
        run = exc.object[exc.start : exc.end]
        return unicodedata.normalize("NFKD", run).casefold().translate(table), exc.end

    name = f"saathi.scanning.{id(table):x}"
    codecs.register_error(name, handler)
    table.errors = name


# Letters repeated (sooooo, diieee) squeeze to one: both the text and the phrases go through it.
# Short strings use plain str.replace per letter; each pass halves a run.
_PAIRS: Final = tuple((c + c, c) for c in "abcdefghijklmnopqrstuvwxyz")
# Long ASCII strings compare every byte with the one before it using big-integer XOR (one C
# pass, no per-letter search): 26 substring searches over 2,000 characters cost several times
# more. These tables turn bytes into masks with bytes.translate: 0xFF where a byte equals the
# previous one, and 0xFF on the letters a-z.
_SQUEEZE_MIN: Final = 64
_DOUBLED: Final = re.compile(r"([a-z])\1")
_SAME_MARK: Final = bytes([0xFF] + [0] * 255)
_LETTER_MARK: Final = bytes(0xFF if 0x61 <= b <= 0x7A else 0 for b in range(256))
_NON_ASCII_RUN: Final = re.compile(r"[^\x00-\x7f]+")
# ! | * inside a word are leetspeak (k!ll, k*ll); outside a word, ! ends a sentence.
# One pattern per symbol, each starting with its literal: the regex engine then skips ahead to
# candidates with a plain character search, where a character class is tested at every
# position (several times slower on a long message). The lookbehind checks the character
# before the symbol. Replacing one symbol never changes the neighbours of another (a symbol
# is only replaced between two letters or digits), so the three passes equal one.
_INWORD_LEET: Final = tuple(
    (symbol, re.compile(re.escape(symbol) + rf"(?<=[a-z0-9]{re.escape(symbol)})(?=[a-z0-9])"), letter)
    for symbol, letter in (("!", "i"), ("|", "l"), ("*", "i"))
)
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


def _squeeze_ascii(b: bytes) -> str:
    """Return ASCII bytes holding no NUL as text, with every run of one letter a-z squeezed."""
    n = len(b)
    if n < _SQUEEZE_MIN:
        return _squeeze(b.decode("ascii"))
    x = int.from_bytes(b, "little")
    # Byte i of x ^ (x << 8) is b[i] ^ b[i - 1]: zero exactly where a byte repeats.
    same = (x ^ (x << 8)).to_bytes(n + 1, "little")[:n].translate(_SAME_MARK)
    drop = int.from_bytes(same, "little") & int.from_bytes(b.translate(_LETTER_MARK), "little")
    if drop:
        # Zero the second and later letters of each run, then delete the zero bytes (NUL is
        # why the input must hold none).
        b = (x & ~drop).to_bytes(n, "little").translate(None, b"\x00")
    return b.decode("ascii")


def _squeeze(s: str) -> str:
    """Return s with every run of one repeated letter a-z reduced to that letter."""
    if len(s) >= _SQUEEZE_MIN and s.isascii() and "\x00" not in s:
        return _squeeze_ascii(s.encode("ascii"))
    # Most short strings (single words) have no doubled letter: one search says so.
    if _DOUBLED.search(s) is None:
        return s
    for pair, single in _PAIRS:
        while pair in s:
            s = s.replace(pair, single)
    return s


def _mixed(tok: str, shorthand: Mapping[str, str]) -> str:
    """Return the word(s) for a token that mixes letters with digits or symbols."""
    rep = shorthand.get(tok)
    if rep is not None:
        return rep
    if tok.isdigit() and tok.isascii():
        return "NUM"  # the commonest case, without the regex
    m = _NUMBER.fullmatch(tok)
    if m is not None:
        unit = m.group(1)
        return _UNITS.get(unit, "NUM") if unit else "NUM"
    word = _squeeze(tok.translate(_LEET))
    return shorthand.get(word, word)


def _split(text: str, table: _NonAscii, shorthand: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Return the tokens of text before shorthand, and what each token mixing letters and digits reads as."""
    if text.isascii() or (
        table.errors is not None and len(text) - len(text.encode("ascii", "ignore")) <= _FEW_NON_ASCII
    ):
        # The error handler folds and translates the non-ASCII runs (see _register); one
        # bytes.translate then lower-cases and maps all the ASCII (lower() is casefold() on
        # ASCII; the handler's output is already folded and passes through unchanged).
        b = text.encode("ascii", table.errors or "strict").translate(_ASCII_FOLD, _ASCII_DELETE)
        s = _squeeze_ascii(b)
    elif table.errors is not None:
        # Much non-ASCII (another script, an emoji flood): the handler would be one Python call
        # per run, so fold and translate the whole text at once; the table's output is ASCII.
        folded = unicodedata.normalize("NFKD", text).casefold().translate(table)
        s = _squeeze_ascii(folded.encode("ascii").translate(_ASCII_FOLD, _ASCII_DELETE))
    else:
        s = unicodedata.normalize("NFKD", text).casefold()
        if not s.isascii():
            s = _NON_ASCII_RUN.sub(lambda m: m.group().translate(table), s)
        s = _squeeze(s.translate(table))
    for symbol, inword, letter in _INWORD_LEET:
        if symbol in s:
            s = inword.sub(letter, s)
    s = s.replace("|", " ").replace("*", " ")
    for ch, spaced in _SPACED:
        if ch in s:
            s = s.replace(ch, spaced)
    toks = s.split()
    if _MIXED_CHARS.search(s) is None:
        return toks, {}
    # Words with digits or symbols: convert each distinct one once. filterfalse keeps the test
    # of every distinct word in C; only the few mixed words reach Python.
    mixed = {t: _mixed(t, shorthand) for t in filterfalse(str.isalpha, set(toks)) if t not in _PUNCT_TOKENS}
    return toks, mixed


def _normal_text(text: str, table: _NonAscii, shorthand: Mapping[str, str]) -> str:
    """Return text normalised into space-separated tokens."""
    toks, mixed = _split(text, table, shorthand)
    words = {**shorthand, **mixed} if mixed else shorthand
    return " ".join(map(words.get, toks, toks))


def _encode(text: str, lex: Lexicon) -> str:
    """Return the normalised tokens of text written in the lexicon's fixed-width codes."""
    toks, mixed = _split(text, lex.table, lex.shorthand)
    coding = lex.coding
    codes, words, unknown = coding.codes, coding.words, coding.unknown
    if not mixed:
        return "".join(map(codes.get, toks, repeat(unknown)))
    # Look each token up in the few mixed words first, then in the lexicon's codes: cheaper than
    # copying the code table (about 1,000 entries) unless the message has hundreds of tokens.
    local = {tok: "".join([words.get(w, unknown) for w in phrase.split()]) for tok, phrase in mixed.items()}
    return "".join(map(local.get, toks, map(codes.get, toks, repeat(unknown))))


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
        if not shorthand[key_norm]:
            # A word that expands to nothing would leave a hole in the token positions.
            raise LexiconError(f"shorthand {key!r} expands to no words")
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

    coding = _coding(entries, shorthand, gap)
    # Each key carries its length in tokens (the same for every cue under it) and its cues
    # tagged with an integer role code, so the automaton pass dispatches without string tests.
    automaton = ahocorasick.Automaton()
    trigger = ahocorasick.Automaton()
    for key, cues in entries.items():
        coded = "".join([coding.codes[t] for t in key.split()])
        automaton.add_word(coded, (cues[0].ntoks, tuple((_code(c), c) for c in cues)))
        if any(c.role in ("risk", "weak") for c in cues):
            trigger.add_word(coded, True)
    automaton.make_automaton()
    if len(trigger):
        trigger.make_automaton()
    return Lexicon(
        version=version,
        rule_ids=tuple(rule_ids),
        keys=tuple(k.strip() for k in entries),
        table=table,
        shorthand=shorthand,
        negation_gap=gap,
        coding=coding,
        automaton=automaton,
        trigger=trigger if len(trigger) else None,
    )


# Printable ASCII but the space, which starts every token's code.
_CODE_CHARS: Final = "".join(chr(c) for c in range(0x21, 0x7F))


def _coding(entries: Mapping[str, list[Cue]], shorthand: Mapping[str, str], gap: frozenset[str]) -> _Coding:
    """Give every token of the lexicon's phrases and negation gap a fixed-width code."""
    tokens = dict.fromkeys(t for key in entries for t in key.split())
    tokens.update(dict.fromkeys(sorted(gap)))
    # Code 0 is the unknown token; the lexicon's tokens are 1..n.
    base = len(_CODE_CHARS)
    width = 1
    while base**width <= len(tokens):
        width += 1

    def code(i: int) -> str:
        digits = []
        for _ in range(width):
            i, d = divmod(i, base)
            digits.append(_CODE_CHARS[d])
        return " " + "".join(reversed(digits))

    words = {t: code(i) for i, t in enumerate(tokens, start=1)}
    unknown = code(0)
    codes = dict(words)
    for key, expansion in shorthand.items():
        codes[key] = "".join([words.get(w, unknown) for w in expansion.split()])
    return _Coding(width=width, codes=codes, words=words, unknown=unknown, gap=frozenset(words[w][1:] for w in gap))


# Integer codes for the roles, so the automaton pass compares small ints, not strings.
(
    _C_PRONOUN,
    _C_RISK,
    _C_STOP,
    _C_PLAN,
    _C_PRESENT,
    _C_WEAK,
    _C_SUPPORT,
    _C_QMARK,
    _C_NEGATION,
    _C_PAST,
    _C_POSTNEG,
    _C_IDIOM,
    _C_CLAUSE,
    _C_QUESTION,
    _C_HYP_END,
    _C_HYPOTHETICAL,
    _C_QUOTE,
    _C_MEDIA,
    _C_CONTINUITY,
    _C_RESOLVED,
) = range(20)
_CODES: Final = {
    "pronoun": _C_PRONOUN,
    "risk": _C_RISK,
    "plan": _C_PLAN,
    "present": _C_PRESENT,
    "weak": _C_WEAK,
    "support": _C_SUPPORT,
    "negation": _C_NEGATION,
    "past": _C_PAST,
    "postneg": _C_POSTNEG,
    "idiom": _C_IDIOM,
    "clause": _C_CLAUSE,
    "question": _C_QUESTION,
    "hyp_end": _C_HYP_END,
    "hypothetical": _C_HYPOTHETICAL,
    "quote": _C_QUOTE,
    "media": _C_MEDIA,
    "continuity": _C_CONTINUITY,
    "resolved": _C_RESOLVED,
}


def _code(cue: Cue) -> int:
    if cue.role == "boundary":
        return _C_QMARK if cue.group == "question" else _C_STOP
    return _CODES[cue.role]


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

# One hit of a risk, weak or plan cue: (cue, first token, token after the last, segment).
# A plain tuple: the automaton pass makes thousands of these on a long message.
_Hit = tuple[Cue, int, int, int]
# Token spans of one kind of time cue in one segment: (ends, starts), for O(log n) lookups.
_Spans = tuple[list[int], list[int]]


def _distance(spans: _Spans, start: int, end: int, limit: int) -> int | None:
    """Return the distance to the nearest span that does not overlap [start, end)."""
    ends, starts = spans
    best: int | None = None
    i = bisect_right(ends, start) - 1
    if i >= 0:
        best = start - ends[i]
    j = bisect_left(starts, end)
    if j < len(starts):
        d = starts[j] - end
        if best is None or d < best:
            best = d
    if best is None or best > limit:
        return None
    return best


class _Context:
    """Everything the rules need to know about a message after the automaton pass."""

    __slots__ = (
        "clause_stops",
        "coded",
        "continuity",
        "hyp_ends",
        "hyp_segs",
        "idiom_tokens",
        "media_segs",
        "negation_ends",
        "past",
        "plans",
        "postneg_starts",
        "present",
        "pronoun_ends",
        "pronouns",
        "question_segs",
        "quoted_pairs",
        "quotes",
        "resolved",
        "risks",
        "stride",
        "support_segs",
        "weaks",
    )

    coded: str  # the message in the lexicon's token codes
    stride: int  # characters per token in coded
    risks: list[_Hit]
    weaks: list[_Hit]
    plans: list[_Hit]
    negation_ends: list[int]
    postneg_starts: set[int]
    pronoun_ends: list[int]
    pronouns: list[tuple[str, int]]
    past: dict[int, _Spans]
    present: dict[int, _Spans]
    hyp_ends: list[int]
    hyp_segs: list[int]
    clause_stops: list[int]
    quotes: list[int]
    quoted_pairs: bool
    idiom_tokens: set[int]
    media_segs: set[int]
    support_segs: set[int]
    question_segs: set[int]
    continuity: bool
    resolved: bool


def _spans(found: dict[int, tuple[list[int], list[int]]]) -> dict[int, _Spans]:
    # Ends arrive sorted (the automaton reports hits by end). Starts are sorted only when the
    # last two are out of order: exactly what the rules have always done, kept so that no
    # decision changes with the speed-up.
    for _, starts in found.values():
        if len(starts) > 1 and starts[-1] < starts[-2]:
            starts.sort()
    return found


def _collect(coded: str, lex: Lexicon) -> _Context | None:
    """Run the automaton once and sort every hit by role; None when nothing is a risk or weak sign."""
    risks: list[_Hit] = []
    weaks: list[_Hit] = []
    plans: list[_Hit] = []
    negation_ends: list[int] = []
    postneg_starts: set[int] = set()
    pronoun_ends: list[int] = []
    pronouns: list[tuple[str, int]] = []
    past: dict[int, tuple[list[int], list[int]]] = {}
    present: dict[int, tuple[list[int], list[int]]] = {}
    hyp_ends: list[int] = []
    hyp_segs: list[int] = []
    clause_stops: list[int] = []
    quotes: list[int] = []
    idiom_tokens: set[int] = set()
    media_segs: set[int] = set()
    support_segs: set[int] = set()
    question_segs: set[int] = set()
    continuity = resolved = False
    seg = 0
    stride = lex.coding.width + 1
    # Codes are tested roughly in order of how often they occur in chat.
    for e, (ntoks, items) in lex.automaton.iter(coded):
        end = e // stride + 1
        start = end - ntoks
        for code, cue in items:
            if code == _C_PRONOUN:
                pronoun_ends.append(end)
                pronouns.append((cue.person, seg))
            elif code == _C_RISK:
                risks.append((cue, start, end, seg))
            elif code == _C_STOP:
                seg += 1
            elif code == _C_PLAN:
                plans.append((cue, start, end, seg))
            elif code == _C_PRESENT:
                spans = present.get(seg)
                if spans is None:
                    present[seg] = ([end], [start])
                else:
                    spans[0].append(end)
                    spans[1].append(start)
            elif code == _C_WEAK:
                weaks.append((cue, start, end, seg))
            elif code == _C_SUPPORT:
                support_segs.add(seg)
            elif code == _C_QMARK:
                question_segs.add(seg)
                seg += 1
            elif code == _C_NEGATION:
                negation_ends.append(end)
            elif code == _C_PAST:
                spans = past.get(seg)
                if spans is None:
                    past[seg] = ([end], [start])
                else:
                    spans[0].append(end)
                    spans[1].append(start)
            elif code == _C_POSTNEG:
                postneg_starts.add(start)
            elif code == _C_IDIOM:
                idiom_tokens.update(range(start, end))
            elif code == _C_CLAUSE:
                seg += 1
            elif code == _C_QUESTION:
                question_segs.add(seg)
            elif code == _C_HYP_END:
                clause_stops.append(start)
            elif code == _C_HYPOTHETICAL:
                hyp_ends.append(end)
                hyp_segs.append(seg)
            elif code == _C_QUOTE:
                quotes.append(start)
            elif code == _C_MEDIA:
                media_segs.add(seg)
            elif code == _C_CONTINUITY:
                continuity = True
            elif code == _C_RESOLVED:
                resolved = True
    if not (risks or weaks):
        return None
    if clause_stops and any(a > b for a, b in itertools.pairwise(clause_stops)):
        clause_stops.sort()
    ctx = _Context()
    ctx.coded = coded
    ctx.stride = stride
    ctx.risks = risks
    ctx.weaks = weaks
    ctx.plans = plans
    ctx.negation_ends = negation_ends
    ctx.postneg_starts = postneg_starts
    ctx.pronoun_ends = pronoun_ends
    ctx.pronouns = pronouns
    ctx.past = _spans(past)
    ctx.present = _spans(present)
    ctx.hyp_ends = hyp_ends
    ctx.hyp_segs = hyp_segs
    ctx.clause_stops = clause_stops
    ctx.quotes = quotes
    ctx.quoted_pairs = bool(quotes) and len(quotes) % 2 == 0
    ctx.idiom_tokens = idiom_tokens
    ctx.media_segs = media_segs
    ctx.support_segs = support_segs
    ctx.question_segs = question_segs
    ctx.continuity = continuity
    ctx.resolved = resolved
    return ctx


def _judge(hit: _Hit, ctx: _Context, gap: frozenset[str]) -> tuple[int, str]:
    """Return the level of one risk/weak/plan hit in its context, and a note on why it changed.

    gap holds the coded negation_gap words (see _Coding).
    """
    cue, start, end, seg = hit
    idioms = ctx.idiom_tokens
    if idioms and not idioms.isdisjoint(range(start, end)):
        return _NONE_R, "idiom"
    # Negation just before, with only filler words between ("not really going to ...").
    ends = ctx.negation_ends
    if ends:
        i = bisect_right(ends, start) - 1
        if i >= 0 and start - ends[i] <= _NEGATION_GAP_MAX:
            stride = ctx.stride
            if gap.issuperset(ctx.coded[ends[i] * stride : start * stride].split()):
                return _NONE_R, "negated"
    if end in ctx.postneg_starts:
        return _NONE_R, "negated"

    is_risk = cue.role == "risk"
    level = cue.rank if is_risk else _HIGH
    base = level
    notes: list[str] = []

    person = cue.person
    if person == "any" and is_risk:
        person = "first"
        j = bisect_right(ctx.pronoun_ends, start) - 1
        if j >= 0:
            pronoun, pseg = ctx.pronouns[j]
            if pseg == seg:
                person = pronoun

    quoted = ctx.quoted_pairs and bisect_left(ctx.quotes, start) % 2 == 1
    if quoted or seg in ctx.media_segs:
        level = min(level, _CONCERN) if person == "first" else _NONE_R
        notes.append("quoted")
    if person == "second":
        level = _NONE_R if seg in ctx.question_segs else min(level, _CONCERN)
        notes.append("to-other")
    elif person == "third" and is_risk and cue.category not in _ANY_PERSON_CATEGORIES and base != _IMMINENT:
        level = min(level, _CONCERN)
        notes.append("third-person")
    if seg in ctx.support_segs and person != "first" and base != _IMMINENT:
        level = _NONE_R
        notes.append("support")

    past = ctx.past.get(seg)
    if past is not None:
        dp = _distance(past, start, end, _PAST_WINDOW)
        if dp is not None:
            present = ctx.present.get(seg)
            dn = _distance(present, start, end, _PRESENT_WINDOW) if present is not None else None
            if dn is None or dp < dn:
                level = _CONCERN if level >= _HIGH else _NONE_R
                notes.append("past")

    hyp_ends = ctx.hyp_ends
    if hyp_ends:
        k = bisect_right(hyp_ends, start) - 1
        if k >= 0 and ctx.hyp_segs[k] == seg:
            stops = ctx.clause_stops
            m = bisect_left(stops, hyp_ends[k])
            if m == len(stops) or stops[m] >= start:
                level = min(level, _CONCERN)
                notes.append("conditional")

    if ctx.resolved and base == _IMMINENT:
        level = min(level, _CONCERN)
        notes.append("resolved")
    if not notes:
        return level, ""
    return level, ",".join(notes)


def _by_category(h: _Hit) -> tuple[str, int, int]:
    return h[0].category, h[1], -h[2]


def _by_position(h: _Hit) -> tuple[int, int]:
    return h[2], h[1]


def _longest(hits: list[_Hit]) -> list[_Hit]:
    """Drop risk hits inside a longer hit of the same category ('had seizures' over 'seizures')."""
    if len(hits) < 2:
        return hits
    ordered = sorted(hits, key=_by_category)
    kept: list[_Hit] = []
    cover_cat = ""
    cover_start = cover_end = -1
    for h in ordered:
        cat = h[0].category
        start, end = h[1], h[2]
        if cat == cover_cat and end <= cover_end and (start != cover_start or end != cover_end):
            continue
        if cat != cover_cat or end > cover_end:
            cover_cat, cover_start, cover_end = cat, start, end
        kept.append(h)
    kept.sort(key=_by_position)
    return kept


def _within(starts: list[int], pos: int, window: int) -> bool:
    """Return True if a sorted position list has an entry within window tokens of pos."""
    i = bisect_left(starts, pos - window)
    return i < len(starts) and starts[i] <= pos + window


def _inside(inner: _Hit, outer: _Hit) -> bool:
    return outer[1] <= inner[1] and inner[2] <= outer[2]


def _escalation(escalating: list[_Hit], plans: list[_Hit]) -> Cue | None:
    """Return the plan cue that makes a HIGH statement imminent, if any.

    A means named inside the statement itself ('the pills are in front of me') does not
    escalate it on its own; a time does ('end it tonight').
    """
    if not escalating or not plans:
        return None
    first = escalating[0]
    for p in plans:
        if p[0].group == "time" or not _inside(p, first):
            return p[0]
    for e in escalating[1:]:
        if not _inside(plans[0], e):
            return plans[0][0]
    return None


def _describe(cue: Cue, note: str) -> str:
    return f"{cue.rule}:{cue.phrase} [{note}]" if note else f"{cue.rule}:{cue.phrase}"


def _weak_signs(
    weaks: list[_Hit], plans: list[_Hit], ctx: _Context, gap: frozenset[str]
) -> tuple[list[Cue], list[tuple[str, str]]]:
    """Return the weak signs that count (one per phrase, by group) and the combinations they make."""
    groups: dict[str, dict[str, Cue]] = {"distress": {}, "farewell": {}, "overdose": {}}
    near: dict[str, bool] = {"distress": False, "overdose": False}
    means_starts = sorted(h[1] for h in plans if h[0].group == "means")
    for hit in weaks:
        cue = hit[0]
        group = cue.group
        seen = groups[group]
        # A phrase already counted adds nothing, unless it might still be the one near a means.
        if cue.phrase in seen and (group not in near or near[group] or not means_starts):
            continue
        if _judge(hit, ctx, gap)[0] < _HIGH:
            continue
        seen.setdefault(cue.phrase, cue)
        if group in near and not near[group]:
            near[group] = _within(means_starts, hit[1], _MEANS_WINDOW[group])
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
    return [*distress.values(), *farewell.values(), *overdose.values()], combo


def _decide(ctx: _Context, gap: frozenset[str]) -> Assessment:
    """Combine judged hits into one assessment."""
    evidence: list[str] = []
    categories: set[str] = set()
    level = _NONE_R
    escalating: list[_Hit] = []

    for hit in _longest(ctx.risks):
        lvl, note = _judge(hit, ctx, gap)
        cue = hit[0]
        evidence.append(_describe(cue, note))
        if lvl == _NONE_R:
            continue
        categories.add(cue.category)
        if lvl > level:
            level = lvl
        if lvl == _HIGH and cue.category in _ESCALATING:
            escalating.append(hit)

    # Only the hits that can still change the outcome are judged (judging is most of the cost
    # on a long message): means and times escalate a statement only if the statements leave the
    # level at HIGH; otherwise only means matter, and only to weak signs that combine with them.
    weaks = ctx.weaks
    escalate = bool(escalating) and level == _HIGH
    plans: list[_Hit] = []
    if escalate or any(h[0].group in _MEANS_WINDOW for h in weaks):
        for hit in ctx.plans:
            if (escalate or hit[0].group == "means") and _judge(hit, ctx, gap)[0] >= _HIGH:
                plans.append(hit)

    if weaks:
        signs, combo = _weak_signs(weaks, plans, ctx, gap)
        evidence.extend(_describe(cue, "") for cue in signs)
        if combo:
            for category, name in combo:
                categories.add(category)
                evidence.append(f"combo:{name}")
            if level < _HIGH:
                level = _HIGH
        elif any(cue.group in ("distress", "farewell") for cue in signs):
            # Hopelessness or a goodbye on its own.
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
    lex = lexicon if lexicon is not None else _DEFAULT or load_lexicon()
    coded = _encode(text, lex)
    # Most messages hold no risk or weak phrase at all: a second, smaller automaton finds the
    # first one in C and stops, so those messages never reach the Python rules.
    if not coded or lex.trigger is None or next(lex.trigger.iter(coded), None) is None:
        return _NONE
    ctx = _collect(coded, lex)
    if ctx is None:
        return _NONE
    return _decide(ctx, lex.coding.gap)


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
