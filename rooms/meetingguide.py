"""The Meeting Guide JSON feed (github.com/code4recovery/spec): type codes, export and import.

Pure: no Django. Services turn models into `FeedMeeting`s and back; this module only knows the feed.

Two facts shape everything here:

* The feed's ``day`` counts from Sunday (0 = Sunday .. 6 = Saturday); Python counts from Monday
  (0 = Monday). `FeedMeeting.days` always holds Python weekdays; the conversion happens only at the edge.
* A type code means what the *programme* says it means. ``Y`` is "Young People" in AA but "Alateen"
  (a group for teenagers) in Al-Anon; ``POA`` is "Proof of Attendance" in AA but "Parents of
  Alcoholics" in Al-Anon. The feed has no programme field, so a site publishes one feed per programme
  (as the 12 Step Meeting List plugin does) and an importer must know, or infer, the programme before
  it can read the codes. Codes we cannot read for the programme reject the row rather than guess: a
  misread code can send a teenager or a newcomer to the wrong room.

Sources: the spec README's type table (English names) and the per-programme tables of the 12 Step
Meeting List plugin (code4recovery/12-step-meeting-list, includes/functions.php, `$tsml_programs`).
Saathi's own programmes (SMART, family groups, circles...) have no published table; they get the codes
whose meaning does not depend on the programme.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft7Validator
from referencing import Registry, Resource

__all__ = [
    "DEFAULT_TZ",
    "LANGUAGE_TYPES",
    "PROGRAMME_ALIASES",
    "PROGRAMME_TYPES",
    "SCHEMA_DIR",
    "SPEC_TYPES",
    "FeedMeeting",
    "ParseResult",
    "Programme",
    "RejectedRow",
    "RowNote",
    "infer_programme",
    "parse_feed",
    "schema_errors",
    "to_feed_row",
    "type_name",
]

DEFAULT_TZ = "Asia/Kolkata"
DEFAULT_DURATION = timedelta(hours=1)  # the spec: end_time "defaults to one hour after the start time"
# The schemas transcribed from the spec (MIT; LICENSE beside them). They ship with the app (the feed
# view and the importer use them); tests/data/meeting-guide keeps an identical copy for the tests.
SCHEMA_DIR = Path(__file__).resolve().parent / "data" / "meeting-guide"


class Programme(StrEnum):
    """The fellowships and group kinds Saathi hosts."""

    AA = "aa"
    NA = "na"
    SMART = "smart"
    AL_ANON = "al_anon"
    NAR_ANON = "nar_anon"
    FAMILY = "family"
    WOMENS_CIRCLE = "womens_circle"
    THERAPIST_LED = "therapist_led"
    PEER_MENTORSHIP = "peer_mentorship"
    AFTERCARE = "aftercare"
    SHARING_CIRCLE = "sharing_circle"
    GENERAL = "general"


PROGRAMME_LABELS: Mapping[Programme, str] = {
    Programme.AA: "AA",
    Programme.NA: "NA",
    Programme.SMART: "SMART Recovery",
    Programme.AL_ANON: "Al-Anon",
    Programme.NAR_ANON: "Nar-Anon",
    Programme.FAMILY: "family groups",
    Programme.WOMENS_CIRCLE: "women's circles",
    Programme.THERAPIST_LED: "therapist-led groups",
    Programme.PEER_MENTORSHIP: "peer mentorship",
    Programme.AFTERCARE: "aftercare groups",
    Programme.SHARING_CIRCLE: "sharing circles",
    Programme.GENERAL: "general groups",
}

# Every code in meeting-type.schema.json with its English name from the spec README. The last six
# are the spec's "proposed" codes, which the schema already accepts.
SPEC_TYPES: Mapping[str, str] = {
    "11": "11th Step Meditation",
    "12x12": "12 Steps & 12 Traditions",
    "A": "Secular",
    "ABSI": "As Bill Sees It",
    "AL": "Concurrent with Alateen",
    "AL-AN": "Concurrent with Al-Anon",
    "AM": "Amharic",
    "ASL": "American Sign Language",
    "B": "Big Book",
    "BA": "Babysitting Available",
    "BE": "Newcomer",
    "BI": "Bisexual",
    "BRK": "Breakfast",
    "C": "Closed",
    "CAN": "Candlelight",
    "CF": "Child-Friendly",
    "D": "Discussion",
    "DA": "Danish",
    "DB": "Digital Basket",
    "DD": "Dual Diagnosis",
    "DE": "German",
    "DR": "Daily Reflections",
    "EL": "Greek",
    "EN": "English",
    "FA": "Persian",
    "FF": "Fragrance Free",
    "FR": "French",
    "G": "Gay",
    "GR": "Grapevine",
    "H": "Birthday",
    "HE": "Hebrew",
    "HI": "Hindi",
    "HR": "Croatian",
    "HU": "Hungarian",
    "ITA": "Italian",
    "JA": "Japanese",
    "KOR": "Korean",
    "L": "Lesbian",
    "LGBTQ": "LGBTQ",
    "LIT": "Literature",
    "LS": "Living Sober",
    "LT": "Lithuanian",
    "M": "Men",
    "MED": "Meditation",
    "ML": "Malayalam",
    "N": "Native American",
    "NB": "Non-Binary",
    "NDG": "Indigenous",
    "NO": "Norwegian",
    "O": "Open",
    "OUT": "Outdoor",
    "P": "Professionals",
    "POA": "Proof of Attendance",
    "POC": "People of Color",
    "POL": "Polish",
    "POR": "Portuguese",
    "PUN": "Punjabi",
    "RUS": "Russian",
    "S": "Spanish",
    "SEN": "Seniors",
    "SK": "Slovak",
    "SM": "Smoking Permitted",
    "SP": "Speaker",
    "ST": "Step Study",
    "SV": "Swedish",
    "T": "Transgender",
    "TC": "Location Temporarily Closed",
    "TH": "Thai",
    "TL": "Tagalog",
    "TR": "Tradition Study",
    "TUR": "Turkish",  # in the schema's enum, newer than the README table we read
    "UK": "Ukrainian",
    "W": "Women",
    "X": "Wheelchair Access",
    "XB": "Wheelchair-Accessible Bathroom",
    "XT": "Cross Talk Permitted",
    "Y": "Young People",
    "BV-I": "Blind / Visually Impaired",
    "D-HOH": "Deaf / Hard of Hearing",
    "LO-I": "Loners / Isolationists",
    "QSL": "Quebec Sign Language",
    "RSL": "Russian Sign Language",
    "LGBTQIAA+": "LGBTQIAA+",
}

# Language type codes -> ISO 639-1. Bengali, the language of most Kolkata meetings, has no code in the
# spec: a Bengali meeting says so in its notes (never invent a code; the spec reserves ISO-like codes).
LANGUAGE_TYPES: Mapping[str, str] = {
    "AM": "am",
    "DA": "da",
    "DE": "de",
    "EL": "el",
    "EN": "en",
    "FA": "fa",
    "FR": "fr",
    "HE": "he",
    "HI": "hi",
    "HR": "hr",
    "HU": "hu",
    "ITA": "it",
    "JA": "ja",
    "KOR": "ko",
    "LT": "lt",
    "ML": "ml",
    "NO": "no",
    "POL": "pl",
    "POR": "pt",
    "PUN": "pa",
    "RUS": "ru",
    "S": "es",
    "SK": "sk",
    "SV": "sv",
    "TH": "th",
    "TL": "tl",
    "TUR": "tr",
    "UK": "uk",
}
_TYPE_FOR_LANGUAGE = {iso: code for code, iso in LANGUAGE_TYPES.items()}

# Codes that mean the same thing whatever the programme: format, who the meeting is for, access,
# language. (FF is "Fragrance Free" in every programme table we found, AA, Al-Anon, CoDA, SLAA alike.)
_UNIVERSAL = frozenset(
    {
        *LANGUAGE_TYPES,
        *("ASL", "QSL", "RSL", "BV-I", "D-HOH", "X", "XB", "FF", "SM", "BA", "CF", "TC", "DB", "LO-I"),
        *("D", "SP", "LIT", "MED", "CAN", "OUT", "BRK", "BE", "XT", "DD"),
        *("M", "W", "G", "L", "T", "BI", "NB", "LGBTQ", "LGBTQIAA+", "POC", "N", "NDG", "SEN"),
        *("O", "C", "A"),
    }
)
# AA literature (Big Book, As Bill Sees It, Twelve and Twelve, Grapevine, Living Sober, Daily
# Reflections) and AA's concurrent-meeting codes only make sense in AA.
_AA_ONLY = frozenset({"B", "ABSI", "12x12", "GR", "LS", "DR", "AL-AN", "AL"})
_STEPS = frozenset({"ST", "TR", "11"})


def _table(codes: frozenset[str], **renamed: str) -> Mapping[str, str]:
    names = {code: SPEC_TYPES[code] for code in sorted(codes)}
    for code, name in renamed.items():
        names[code] = name
    return names


def _family_group(**extra: str) -> Mapping[str, str]:
    # Family groups define open and closed differently: closed means families and friends only.
    return _table(
        (_UNIVERSAL | _STEPS) - {"Y"},
        O="Families, Friends and Observers Welcome",
        C="Families and Friends Only",
        A="Atheist / Agnostic",
        **extra,
    )


_NON_STEP = _UNIVERSAL | {"Y", "POA"}

# Programme -> the canonical (schema) codes it accepts, with the programme's own meaning.
PROGRAMME_TYPES: Mapping[Programme, Mapping[str, str]] = {
    # The spec's table is AA's: every code, with the spec's names.
    Programme.AA: dict(SPEC_TYPES),
    # NA (12 Step Meeting List, 'na'): no AA literature, no Birthday (H) or concurrent-meeting codes;
    # P kept as Professionals, POA as Proof of Attendance (same intent as AA).
    Programme.NA: _table(
        _UNIVERSAL | _STEPS | {"Y", "POA", "P"},
        BE="Beginner/Newcomer",
        D="Discussion/Participation",
        LIT="Literature Study",
        CF="Children Welcome",
    ),
    # Al-Anon (12 Step Meeting List, 'al-anon'): Y is Alateen, POA is Parents of Alcoholics, AL is a
    # concurrent Alateen meeting. No P (DA uses P for "Prosperity"; Al-Anon lists none).
    Programme.AL_ANON: _family_group(Y="Alateen", POA="Parents of Alcoholics", AL="Concurrent with Alateen Meeting"),
    # Nar-Anon has no published table; it is a family group like Al-Anon, so O and C take the
    # family-group meanings. Y (Narateen or young people?) and POA (parents or proof?) are ambiguous
    # there, so a Nar-Anon row using them is rejected rather than read one way.
    Programme.NAR_ANON: _family_group(),
    Programme.FAMILY: _family_group(),
    # Saathi's own, non-12-step programmes: only codes whose meaning does not depend on the programme.
    # No P ("Professionals" would read as "run by professionals" in a therapist-led group), no H, no
    # step or AA-literature codes.
    Programme.SMART: _table(_NON_STEP),
    Programme.WOMENS_CIRCLE: _table(_NON_STEP),
    Programme.THERAPIST_LED: _table(_NON_STEP),
    Programme.PEER_MENTORSHIP: _table(_NON_STEP),
    Programme.AFTERCARE: _table(_NON_STEP),
    Programme.SHARING_CIRCLE: _table(_NON_STEP),
    Programme.GENERAL: _table(_NON_STEP),
}
assert all(set(table) <= set(SPEC_TYPES) for table in PROGRAMME_TYPES.values())

# Programme-local codes found in real feeds that are not Meeting Guide codes -> the canonical codes
# they become (an empty tuple: understood, but the spec has no way to say it, so it is dropped with a
# note). From the 12 Step Meeting List per-programme tables.
_NA_ALIASES: Mapping[str, tuple[str, ...]] = {
    "BEG": ("BE",),
    "DISC": ("D",),
    "TOP": ("D",),
    "SPK": ("SP",),
    "STEP": ("ST",),
    "TRAD": ("TR",),
    "CW": ("CF",),
    "SMOK": ("SM",),
    "GL": ("G", "L"),
    # NA literature studies: Basic Text, Just For Today, IP, It Works, Living Clean, Step Working
    # Guide, Spiritual Principle a Day, the Twelve Concepts. The spec only has "Literature".
    **{code: ("LIT",) for code in ("BT", "JFT", "IP", "IW", "LC", "SWG", "SPAD", "CPT")},
    "NS": (),  # Non-Smoking: the absence of SM already says it
    "QA": (),  # Questions & Answers
    "RA": (),  # Restricted Access (e.g. inside a hospital or prison): kept in the import notes
    "VAR": (),  # Format Varies
    "ONL": (),  # Online: the spec says this with conference_url
}
_AL_ANON_ALIASES: Mapping[str, tuple[str, ...]] = {
    "LGBTQIA": ("LGBTQ",),
    "AC": (),  # Adult Child Focus
    "AA": (),  # Concurrent with an AA meeting (AL-AN is the AA side's code, not this)
    "YA": (),  # Young Adults: cannot become Y, which means Alateen in Al-Anon
    "ONL": (),
}
PROGRAMME_ALIASES: Mapping[Programme, Mapping[str, tuple[str, ...]]] = {
    Programme.NA: _NA_ALIASES,
    Programme.AL_ANON: _AL_ANON_ALIASES,
    Programme.NAR_ANON: {"ONL": ()},
}


def type_name(code: str, programme: Programme | str) -> str:
    """Return what a type code means in a programme, or raise KeyError if it means nothing there."""
    return PROGRAMME_TYPES[Programme(programme)][code]


@dataclass(frozen=True, kw_only=True)
class FeedMeeting:
    """One weekly meeting as the feed sees it; `days` are Python weekdays (0 = Monday)."""

    name: str
    slug: str
    programme: Programme
    days: tuple[int, ...]
    start_local: time
    duration: timedelta = DEFAULT_DURATION
    tz: str = DEFAULT_TZ
    types: tuple[str, ...] = ()  # canonical Meeting Guide codes, read with `programme`
    notes: str = ""
    updated: datetime | None = None
    conference_url: str | None = None
    conference_url_notes: str | None = None
    language: str | None = None  # ISO 639-1, e.g. "bn", "hi", "en"
    region: str | None = None
    regions: tuple[str, ...] = ()
    location: str | None = None


@dataclass(frozen=True)
class RejectedRow:
    """A feed row that was not imported, and why."""

    index: int
    slug_or_name: str
    reason: str


@dataclass(frozen=True)
class RowNote:
    """Something an importer should know about a row that was imported."""

    index: int
    slug: str
    message: str


@dataclass
class ParseResult:
    """The meetings read from a feed, the rows refused, and notes on the rows accepted."""

    meetings: list[FeedMeeting] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    notes: list[RowNote] = field(default_factory=list)


# --- Schema --------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _validators(schema_dir: Path) -> tuple[Draft7Validator, Draft7Validator]:
    """Return validators for a whole row and for a row's structure without its types."""
    meeting = json.loads((schema_dir / "meeting.schema.json").read_text(encoding="utf-8"))
    types = json.loads((schema_dir / "meeting-type.schema.json").read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in (meeting, types)
    )
    # Import checks types against the programme's table instead: NA and Al-Anon feeds carry codes of
    # their own that are not in the Meeting Guide enum but that we know how to read.
    structure = {**meeting, "properties": {**meeting["properties"], "types": {"type": "array"}}}
    return Draft7Validator(meeting, registry=registry), Draft7Validator(structure, registry=registry)


def _messages(validator: Draft7Validator, row: object) -> list[str]:
    errors = sorted(validator.iter_errors(row), key=lambda error: list(error.absolute_path))
    return [f"{'.'.join(str(part) for part in error.absolute_path) or 'row'}: {error.message}" for error in errors]


def schema_errors(row: object, *, schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Return why a row does not validate against meeting.schema.json (empty when it does)."""
    return _messages(_validators(schema_dir)[0], row)


# --- Export --------------------------------------------------------------------------------------


def _spec_day(python_weekday: int) -> int:
    return (python_weekday + 1) % 7  # Python 0 = Monday; the feed's 0 = Sunday


def _python_day(spec_day: int) -> int:
    return (spec_day - 1) % 7


def _updated(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("`updated` must be an aware datetime; the feed carries it in UTC.")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def to_feed_row(meeting: FeedMeeting) -> dict[str, object]:
    """Return the meeting as a Meeting Guide row (valid against meeting.schema.json).

    Several weekdays become one row with ``day`` as an array: the schema allows it, and slugs must
    be unique, so one row per day is not an option.
    """
    programme = Programme(meeting.programme)
    if not meeting.days or any(not 0 <= day <= 6 for day in meeting.days):
        raise ValueError(f"{meeting.slug}: days must be Python weekdays 0-6; got {meeting.days}.")
    if not timedelta(0) < meeting.duration < timedelta(hours=24):
        raise ValueError(f"{meeting.slug}: the feed can only say a duration between 1 minute and 24 hours.")
    types = list(dict.fromkeys(meeting.types))
    language_code = _TYPE_FOR_LANGUAGE.get(meeting.language or "")
    if language_code and language_code not in types:
        types.append(language_code)
    unreadable = [code for code in types if code not in PROGRAMME_TYPES[programme]]
    if unreadable:
        raise ValueError(f"{meeting.slug}: {', '.join(unreadable)} mean nothing in {PROGRAMME_LABELS[programme]}.")
    days = sorted({_spec_day(day) for day in meeting.days})
    end = datetime.combine(date(2000, 1, 3), meeting.start_local) + meeting.duration
    row: dict[str, object] = {
        "name": meeting.name,
        "slug": meeting.slug,
        "day": days[0] if len(days) == 1 else days,
        "time": meeting.start_local.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "timezone": meeting.tz,
        "types": types,
    }
    optional: dict[str, object | None] = {
        "notes": meeting.notes or None,
        "updated": _updated(meeting.updated) if meeting.updated else None,
        "conference_url": meeting.conference_url,
        "conference_url_notes": meeting.conference_url_notes,
        "location": meeting.location,
        "region": meeting.region,
        "regions": list(meeting.regions) or None,
    }
    row.update({key: value for key, value in optional.items() if value is not None})
    return row


# --- Import --------------------------------------------------------------------------------------

_SLUG = re.compile(r"^[A-Za-z0-9._~-]+$")
_NAME_HINTS: Sequence[tuple[re.Pattern[str], Programme]] = (
    (re.compile(r"\bal-?anon\b|\balateen\b", re.IGNORECASE), Programme.AL_ANON),
    (re.compile(r"\bnar-?anon\b|\bnarateen\b", re.IGNORECASE), Programme.NAR_ANON),
    (re.compile(r"\bSMART\b|\bsmart recovery\b", re.IGNORECASE), Programme.SMART),
    (re.compile(r"\bnarcotics anonymous\b", re.IGNORECASE), Programme.NA),
    (re.compile(r"\bN\.?A\b"), Programme.NA),  # upper case only: "na" is a word in Bengali and Hindi
    (re.compile(r"\balcoholics anonymous\b", re.IGNORECASE), Programme.AA),
    (re.compile(r"\bA\.?A\b"), Programme.AA),
)
_NA_ONLY_CODES = frozenset(_NA_ALIASES) - {"ONL", "GL"}
_AL_ANON_ONLY_CODES = frozenset({"AC", "AA", "YA", "LGBTQIA"})


def infer_programme(name: str, types: Sequence[str], default: Programme | None = None) -> Programme | None:
    """Return the programme a row belongs to, from its name, then `default`, then its type codes.

    The name wins ("Ballygunge Al-Anon" in an AA feed is Al-Anon); a caller's default beats guessing
    from codes; codes only a programme uses (NA's BT, AA's Big Book) decide the rest.
    """
    for pattern, programme in _NAME_HINTS:
        if pattern.search(name):
            return programme
    if default is not None:
        return default
    codes = set(types)
    if codes & _NA_ONLY_CODES:
        return Programme.NA
    if codes & _AL_ANON_ONLY_CODES:
        return Programme.AL_ANON
    if codes & _AA_ONLY:
        return Programme.AA
    return None


class _Reject(Exception):
    pass


def _parse_time(text: str, what: str) -> time:
    hours, _, minutes = text.partition(":")
    try:
        return time(int(hours), int(minutes))
    except ValueError:
        raise _Reject(f"{what} {text!r} is not a time of day (HH:MM, 24-hour).") from None


def _duration(start: time, end_text: str | None, note: list[str]) -> timedelta:
    if end_text is None:
        return DEFAULT_DURATION
    end = _parse_time(end_text, "end_time")
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if minutes == 0:
        raise _Reject(f"end_time {end_text} is the same as the start time.")
    if minutes < 0:
        # 23:30 to 00:30 is a late meeting crossing midnight; 19:00 to 18:00 is a typo. Up to four
        # hours past midnight is read as the former, anything longer as the latter.
        if minutes + 24 * 60 > 4 * 60:
            raise _Reject(f"end_time {end_text} is before the start time {start:%H:%M}.")
        minutes += 24 * 60
        note.append(f"ends after midnight ({start:%H:%M} to {end_text}).")
    return timedelta(minutes=minutes)


def _zone(row: Mapping[str, Any], default_tz: str, note: list[str]) -> str:
    name = row.get("timezone")
    if name is None or name == "":
        note.append(f"no timezone given; used the feed's default, {default_tz}.")
        return default_tz
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Reject(f"timezone {name!r} is not a tz database name such as 'Asia/Kolkata'.") from None
    return str(name)


def _types(raw: Sequence[str], programme: Programme, note: list[str]) -> tuple[str, ...]:
    table = PROGRAMME_TYPES[programme]
    aliases = PROGRAMME_ALIASES.get(programme, {})
    label = PROGRAMME_LABELS[programme]
    codes: list[str] = []
    unknown: list[str] = []
    for code in raw:
        if code in table:
            codes.append(code)
        elif code in aliases:
            codes.extend(aliases[code])
            became = " ".join(aliases[code]) or "nothing (the spec has no code for it)"
            note.append(f"{label} type {code} recorded as {became}.")
        else:
            unknown.append(code)
    if unknown:
        raise _Reject(f"type code(s) {', '.join(unknown)} mean nothing Saathi knows in {label}.")
    return tuple(dict.fromkeys(codes))


def _days(value: int | list[int]) -> tuple[int, ...]:
    spec_days = [value] if isinstance(value, int) else value
    if not spec_days:
        raise _Reject("day is an empty list.")
    # The schema bounds the days of an array but not a single integer day.
    if any(not 0 <= day <= 6 for day in spec_days):
        raise _Reject(f"day {value} is not 0 (Sunday) to 6 (Saturday).")
    return tuple(sorted({_python_day(day) for day in spec_days}))


def _conference_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    # Members tap this link: only a web address, never javascript:, data: or a bare word.
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise _Reject(f"conference_url {value!r} is not a web address.")
    return value


def _parse_row(
    row: Mapping[str, Any], programme_default: Programme | None, default_tz: str, note: list[str]
) -> FeedMeeting:
    if row.get("day") is None or row.get("time") is None:
        raise _Reject("no day and time (a by-appointment meeting); Saathi lists scheduled meetings only.")
    start = _parse_time(row["time"], "time")
    duration = _duration(start, row.get("end_time"), note)
    tz = _zone(row, default_tz, note)
    raw_types = list(row.get("types") or [])
    if any(not isinstance(code, str) for code in raw_types):
        raise _Reject("types must be a list of codes (strings).")
    programme = infer_programme(row["name"], raw_types, programme_default)
    if programme is None:
        programme = Programme.GENERAL
        note.append("programme not known; read its types as a general group.")
    types = _types(raw_types, programme, note)
    updated = None
    if row.get("updated"):
        try:
            updated = datetime.strptime(row["updated"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise _Reject(f"updated {row['updated']!r} is not a real date and time.") from None
    language = next((LANGUAGE_TYPES[code] for code in types if code in LANGUAGE_TYPES), None)
    return FeedMeeting(
        name=row["name"].strip(),
        slug=row["slug"],
        programme=programme,
        days=_days(row["day"]),
        start_local=start,
        duration=duration,
        tz=tz,
        types=types,
        notes=row.get("notes") or "",
        updated=updated,
        conference_url=_conference_url(row.get("conference_url")),
        conference_url_notes=row.get("conference_url_notes") or None,
        language=language,
        region=row.get("region") or None,
        regions=tuple(row.get("regions") or ()),
        location=row.get("location") or None,
    )


def _label(row: object, index: int) -> str:
    if isinstance(row, Mapping):
        for key in ("slug", "name"):
            if isinstance(row.get(key), str) and row[key].strip():
                return str(row[key])
    return f"row {index}"


def parse_feed(
    data: object,
    *,
    default_programme: Programme | str | None = None,
    default_tz: str = DEFAULT_TZ,
    schema_dir: Path = SCHEMA_DIR,
) -> ParseResult:
    """Read a Meeting Guide feed row by row; a bad row is rejected with a reason, never the feed."""
    result = ParseResult()
    if not isinstance(data, list):
        result.rejected.append(RejectedRow(-1, "feed", "the feed is not a JSON array of meetings."))
        return result
    programme_default = None if default_programme is None else Programme(default_programme)
    structure = _validators(schema_dir)[1]
    seen: dict[str, int] = {}
    for index, row in enumerate(data):
        label = _label(row, index)
        if not isinstance(row, Mapping):
            result.rejected.append(RejectedRow(index, label, "is not a JSON object."))
            continue
        slug = row.get("slug")
        if not isinstance(slug, str) or not slug.strip():
            reason = "has no slug; every meeting needs a unique one." if slug in (None, "") else "slug is not text."
            result.rejected.append(RejectedRow(index, label, reason))
            continue
        problems = _messages(structure, row)
        if problems:
            result.rejected.append(RejectedRow(index, label, "; ".join(problems)))
            continue
        if not _SLUG.match(slug):
            reason = f"slug {slug!r} is not URL-safe (letters, digits, '-', '_', '.', '~')."
            result.rejected.append(RejectedRow(index, label, reason))
            continue
        if slug in seen:
            reason = f"slug {slug!r} is already used by row {seen[slug]}; slugs must be unique."
            result.rejected.append(RejectedRow(index, label, reason))
            continue
        notes: list[str] = []
        try:
            meeting = _parse_row(row, programme_default, default_tz, notes)
        except _Reject as reason:
            result.rejected.append(RejectedRow(index, label, str(reason)))
            continue
        seen[slug] = index
        result.meetings.append(meeting)
        result.notes.extend(RowNote(index, slug, message) for message in notes)
    return result
