"""Handle rules: what a public name may be, and the key that makes two handles "the same".

Pure Python (no Django), so the rules are easy to test on their own. A handle is the only thing peers
ever see of a person, so it must not carry contact details, impersonate staff, or hide text direction
tricks. Two handles that look alike to a reader share a `handle_key` and cannot both exist.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache

MIN_LENGTH = 3
MAX_LENGTH = 24

# Words only staff may appear to be. Checked against the look-alike skeleton, so "M0der@tor" and a
# Cyrillic "аdmin" are caught too.
STAFF_WORDS = ("moderator", "counsellor", "counselor", "admin", "staff", "chair", "saathi", "official")

# Characters that change text direction or are invisible: they let a handle pretend to be another.
_INVISIBLE_OR_BIDI = {
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064",
    "\ufeff", "\u00ad", "\u034f", "\u061c", "\u180e",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
}  # fmt: skip

# Common look-alikes folded to the Latin letter a reader would see (digits and symbols used as letters,
# and Cyrillic/Greek letters that render like Latin ones). Lower-case l and capital I look the same in
# many fonts, so both fold to i.
_LOOKALIKES = str.maketrans(
    {
        "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "!": "i", "|": "i", "l": "i",
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ո": "n",
        "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
        "υ": "u", "χ": "x", "ı": "i", "ł": "i",
        # More UTS #39 confusables of letters in the staff words (found by tests/fuzz: "ɑdmin", "moderatօr").
        "ɑ": "a", "һ": "h", "ӏ": "i", "օ": "o", "г": "r", "ս": "u",
    }
)  # fmt: skip

_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[a-z]{2,}", re.IGNORECASE)
_URL = re.compile(r"(https?:|www\.|\.(com|org|net|in|io|me|co|app|info|xyz)\b)", re.IGNORECASE)
_DIGITS = re.compile(r"\d")
_PUNCTUATION_ALLOWED = frozenset(" .-_'")


class HandleError(ValueError):
    """A handle was refused; the message is a sentence the person can read."""


@dataclass(frozen=True, slots=True)
class CleanHandle:
    display: str  # as the person typed it, NFKC-normalised and trimmed
    key: str  # the look-alike skeleton: unique across all handles


def skeleton(text: str) -> str:
    """Return the look-alike key of a handle: case, accents, separators and homoglyphs folded away."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    no_marks = "".join(ch for ch in folded if not unicodedata.combining(ch))
    letters = no_marks.translate(_LOOKALIKES)
    letters = letters.replace("rn", "m").replace("vv", "w")
    return "".join(ch for ch in letters if ch.isalnum())


@cache
def _staff_keys() -> tuple[str, ...]:
    return tuple(skeleton(word) for word in STAFF_WORDS)


def clean_handle(raw: str) -> CleanHandle:
    """Validate a proposed handle and return its display form and key, or raise HandleError."""
    if any(ch in _INVISIBLE_OR_BIDI for ch in raw):
        raise HandleError("Handles can't contain invisible or text-direction characters.")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in raw):
        raise HandleError("Handles can't contain control or unassigned characters.")
    display = " ".join(unicodedata.normalize("NFKC", raw).split())
    if len(display) < MIN_LENGTH or len(display) > MAX_LENGTH:
        raise HandleError(f"A handle needs {MIN_LENGTH} to {MAX_LENGTH} characters.")
    if _EMAIL.search(display) or "@" in display:
        raise HandleError("A handle can't be or contain an email address: it would tell people who you are.")
    if _URL.search(display):
        raise HandleError("A handle can't contain a web address.")
    if len(_DIGITS.findall(display)) >= 6:
        raise HandleError("A handle can't contain a phone number (six or more digits).")
    if not all(ch in _PUNCTUATION_ALLOWED or unicodedata.category(ch)[0] in "LMN" for ch in display):
        raise HandleError("Use letters, numbers, spaces, dots, dashes, underscores or apostrophes.")
    if sum(unicodedata.category(ch) == "Mn" for ch in display) > 2:
        raise HandleError("A handle can't stack accent marks.")
    key = skeleton(display)
    if len(key) < MIN_LENGTH:
        raise HandleError(f"A handle needs at least {MIN_LENGTH} letters or numbers.")
    for word, word_key in zip(STAFF_WORDS, _staff_keys(), strict=True):
        if word_key in key:
            raise HandleError(
                f"A handle can't look like '{word}': only staff may appear to be staff, so members are never misled."
            )
    return CleanHandle(display=display, key=key)


_ADJECTIVES = (
    "Calm", "Brave", "Gentle", "Steady", "Hopeful", "Quiet", "Kind", "Bright", "Patient", "Warm",
    "Honest", "Clear", "Open", "Strong", "Easy", "Early", "Green", "Golden", "Silver", "Blue",
)  # fmt: skip
_NOUNS = (
    "River", "Lotus", "Heron", "Banyan", "Lantern", "Harbour", "Sparrow", "Monsoon", "Meadow", "Cedar",
    "Pebble", "Tide", "Kite", "Mango", "Jasmine", "Falcon", "Comet", "Willow", "Ember", "Brook",
)  # fmt: skip


def suggest_handle() -> str:
    """Return a friendly random handle, for a guest to keep or change."""
    return f"{secrets.choice(_ADJECTIVES)} {secrets.choice(_NOUNS)} {secrets.randbelow(90) + 10}"
