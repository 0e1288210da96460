# ruff: noqa: RUF001, RUF003  (look-alike letters are the point of this file)
"""Hypothesis strategies for hostile input: socket frames (text and binary), message bodies, handles.

Everything a hostile or broken client could put on the wire (issue #6): valid-looking frames with hostile
bodies, structurally broken and deeply nested JSON, NaN/Infinity, huge numbers, oversize frames, lone
surrogates (as `\\ud800` escapes and raw), invalid UTF-8 in binary frames, NUL and control characters,
markup and script injection, `javascript:` links, bidi overrides, zero-width characters, zalgo text,
forged identity and room fields, and confusable (look-alike) staff handles.

The strategies only build data; the tests decide what the server must do with it (usually by asking the
pure parser, `chat.protocol.parse_client_frame`, what it expects, then checking the real server agrees).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

from accounts.handles import STAFF_WORDS

# --- Alphabets -----------------------------------------------------------------------------------------

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
INVISIBLE = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u034f\u180e\u115f\u3164\U000e0041"
CONTROLS = "".join(chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)])  # C0 (NUL too), DEL, C1
SEPARATORS = "\u2028\u2029\u0085\u000b\u000c\r\n\t \u00a0\u3000"
COMBINING = "".join(chr(c) for c in range(0x0300, 0x0370)) + "\u0488\u0489\u20dd\u20de"  # Mn and Me
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
PRIVATE_USE = "\ue000\uf8ff\U000f0000"
# Scripts that need joiners and marks: they must come through intact (Bengali, Devanagari, an emoji family).
KEEP_INTACT = ["আমি ভালো আছি", "क्षमा करें", "नमस्ते", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "ഞാൻ", "ශ්‍රී"]

# Payloads that try to run script, in every context a renderer might put text: element, attribute, URL,
# CSS, SVG/MathML, templates (Django, Jinja, JS template literals, Angular), entities and polyglots.
# Each one tries to set a canary the browser test looks for.
CANARY_JS = "window.__pwned=1;document.title='PWNED';alert(1)"
INJECTIONS = [
    f"<script>{CANARY_JS}</script>",
    f"<script src=data:text/javascript,{CANARY_JS}></script>",
    f'<img src=x onerror="{CANARY_JS}">',
    f"<img src=x onerror={CANARY_JS}//",
    f"<svg onload={CANARY_JS}>",
    f"<svg><script>{CANARY_JS}</script></svg>",
    f"<svg><animate onbegin={CANARY_JS} attributeName=x dur=1s>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={CANARY_JS}>",
    f'<math href="javascript:{CANARY_JS}">CLICK</math>',
    f'<iframe src="javascript:{CANARY_JS}"></iframe>',
    f'<iframe srcdoc="<script>parent.{CANARY_JS}</script>">',
    f'<object data="javascript:{CANARY_JS}">',
    f'<embed src="javascript:{CANARY_JS}">',
    f'<a href="javascript:{CANARY_JS}">click me</a>',
    f'<a href="jav&#x09;ascript:{CANARY_JS}">x</a>',
    f'<a href=" &#14;  javascript:{CANARY_JS}">x</a>',
    f"javascript:{CANARY_JS}",
    f"JaVaScRiPt:{CANARY_JS}",
    f"java\tscript:{CANARY_JS}",
    f"data:text/html,<script>{CANARY_JS}</script>",
    "vbscript:msgbox(1)",
    f'http://example.org/"onmouseover="{CANARY_JS}',
    f"https://example.org/'><script>{CANARY_JS}</script>",
    f"www.example.org/<img src=x onerror={CANARY_JS}>",
    f"<body onload={CANARY_JS}>",
    f"<details open ontoggle={CANARY_JS}>",
    f"<input autofocus onfocus={CANARY_JS}>",
    f"<video><source onerror={CANARY_JS}>",
    f"<marquee onstart={CANARY_JS}>",
    f'<form action="javascript:{CANARY_JS}"><button>go</button></form>',
    f'<meta http-equiv=refresh content="0;url=javascript:{CANARY_JS}">',
    f'<base href="javascript:{CANARY_JS}//">',
    f'<link rel=stylesheet href="javascript:{CANARY_JS}">',
    f"<style>@import 'javascript:{CANARY_JS}';body{{background:url(javascript:{CANARY_JS})}}</style>",
    '<div style="background:url(javascript:alert(1));width:expression(alert(1))">css</div>',
    "<style>*{display:none!important}</style>",
    f"</textarea><script>{CANARY_JS}</script>",
    f"</title><script>{CANARY_JS}</script>",
    f"--><script>{CANARY_JS}</script><!--",
    f"<![CDATA[<script>{CANARY_JS}</script>]]>",
    f'<noscript><p title="</noscript><img src=x onerror={CANARY_JS}>">',
    f"<template><script>{CANARY_JS}</script></template>",
    f"&lt;script&gt;{CANARY_JS}&lt;/script&gt;",
    f"&#60;script&#62;{CANARY_JS}&#60;/script&#62;",
    f"\\u003cscript\\u003e{CANARY_JS}\\u003c/script\\u003e",
    f"%3Cscript%3E{CANARY_JS}%3C/script%3E",
    "{{7*7}}",
    "{% debug %}{{ request.session }}",
    "${alert(1)}",
    "`${window.__pwned=1}`",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{constructor.constructor('window.__pwned=1')()}}",
    f"jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk={CANARY_JS} )//%0D%0A%0d%0a//</stYle/</titLe/"
    f"</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd={CANARY_JS}//>\\x3e",
    f"'\"><img src=x onerror={CANARY_JS}>",
    f"\"'`><svg/onload={CANARY_JS}>",
    f"<scr<script>ipt>{CANARY_JS}</scr</script>ipt>",
    f"<SCRIPT>{CANARY_JS}</SCRIPT>",
    f'<script\x20type="text/javascript">{CANARY_JS}</script>',
    f"<img src=`x` onerror=`{CANARY_JS}`>",
    '" onmouseover="alert(1)',
    "<a href=https://example.org onclick=alert(1)>link</a>",
    '<a href="https://example.org" target=_blank rel=opener>tab-nabbing</a>',
    "<x contenteditable onblur=alert(1)>lose focus</x>",
    "<dialog open>fake system dialog: enter your password</dialog>",
    "<h1>Moderator: everyone leave now</h1>",
    "[click](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "-moz-binding:url(http://example.org/xbl.xml#xss)",
]
# Direction and invisibility tricks: reverse text so "exe.txt" reads as "txt.exe", or hide a word.
BIDI_TRICKS = [
    "file\u202etxt.exe",
    "\u202eadmin\u202c",
    "Call me at \u2066+91 98765\u2069 43210",
    "https://example.org/\u202egpj.exe",
    "safe\u200bword",
    "\u2067\u05e9\u05dc\u05d5\u05dd\u2069 mixed",
    "\u200f\u200e\u061c direction marks",
    "mod\u00aderator",
]


def zalgo(base: str, marks_per_char: int) -> str:
    """Stack `marks_per_char` combining marks on each character of `base` (deterministic)."""
    return "".join(
        ch + "".join(COMBINING[(i * 7 + j) % len(COMBINING)] for j in range(marks_per_char))
        for i, ch in enumerate(base)
    )


ZALGO = [zalgo("he comes", 12), zalgo("H̸̡̪̯ͨ͊̽̅̾", 30), zalgo("x", 400)]


# --- Text ----------------------------------------------------------------------------------------------

hostile_chars = st.one_of(
    st.sampled_from(BIDI + INVISIBLE + CONTROLS + SEPARATORS + COMBINING + PRIVATE_USE + "<>\"'&`/\\:;=()[]{}%#$"),
    st.characters(),  # any code point Hypothesis likes (no surrogates: they get their own strategy)
    SURROGATES,
)

hostile_piece = st.one_of(
    st.sampled_from(INJECTIONS),
    st.sampled_from(BIDI_TRICKS),
    st.sampled_from(ZALGO),
    st.sampled_from(KEEP_INTACT),
    st.text(hostile_chars, max_size=40),
    st.text(max_size=40),
    st.builds(zalgo, st.text(min_size=1, max_size=6), st.integers(1, 40)),
)

# A message body: hostile pieces glued together. Mostly short; sometimes near or over the 2,000-char limit.
hostile_text = st.one_of(
    st.lists(hostile_piece, min_size=1, max_size=6).map("".join),
    st.lists(hostile_piece, min_size=1, max_size=3)
    .map("".join)
    .flatmap(lambda s: st.integers(1900, 2100).map(lambda n: (s * (n // max(len(s), 1) + 1))[:n] if s else "x" * n)),
)

# Bodies that contain no character the parser refuses (no surrogates, no controls but \n \t): the ones that
# get stored, and so the ones whose rendering matters.
storable_chars = st.one_of(
    st.sampled_from(BIDI + INVISIBLE + COMBINING + PRIVATE_USE + "\n\t <>\"'&`/\\:;=()[]{}%#$"),
    st.characters(exclude_categories=("Cs", "Cc")),
)
storable_text = st.one_of(
    st.lists(
        st.one_of(
            st.sampled_from(INJECTIONS + BIDI_TRICKS + ZALGO + KEEP_INTACT),
            st.text(storable_chars, max_size=40),
            st.builds(zalgo, st.text(storable_chars, min_size=1, max_size=6), st.integers(1, 40)),
        ),
        min_size=1,
        max_size=5,
    ).map("".join),
)


# --- JSON values ---------------------------------------------------------------------------------------

huge_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**53, 2**53 + 1, -1, 0, 2**63, -(2**63) - 1, 10**300]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    huge_ints,
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)

CLIENT_TYPES = ["send", "resume", "hand", "report", "ping", "mod", "support_reply"]
FRAME_TYPES = st.one_of(
    st.sampled_from(CLIENT_TYPES),
    st.sampled_from(["SEND", "send ", "welcome", "message", "error", "pong", "", "__proto__", "constructor"]),
    json_values,
)
# Fields a client must never be able to choose: who it is, what it may do, which room it is in.
FORGED_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "handle": st.sampled_from(["Moderator", "Counsellor on call", "Saathi Team", "<b>admin</b>"]),
        "role": st.sampled_from(["moderator", "counsellor", "chair", "admin"]),
        "room": st.sampled_from(["closed-members", "family-room", "../admin", "*"]),
        "slug": st.just("another-room"),
        "user_id": st.integers(1, 5),
        "author_key": st.sampled_from(["u:1", "g:1"]),
        "is_staff": st.just(True),
        "id": st.integers(1, 10),
        "seq": st.integers(1, 10),
        "sent_at": st.just("1970-01-01T00:00:00Z"),
        "held": st.just(False),
        "html": st.sampled_from(INJECTIONS),
    },
)
client_ids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: "{" + str(u).upper() + "}"),  # accepted by uuid.UUID, normalised by the parser
    st.uuids().map(lambda u: u.hex),
    json_values,
)
# Moderately "small" resume positions only when the test wants no replay: a huge `after` gives just `resumed`.
resume_after = st.one_of(st.integers(2**40, 2**53), huge_ints, json_values)


def _frame(kind: Any, fields: dict[str, Any], forged: dict[str, Any]) -> dict[str, Any]:
    return {**forged, "type": kind, **fields}


typed_fields = st.one_of(
    st.fixed_dictionaries({"body": st.one_of(hostile_text, hostile_text, json_values), "client_id": client_ids}),
    st.fixed_dictionaries({"after": resume_after}),
    st.fixed_dictionaries({"up": st.one_of(st.booleans(), json_values)}),
    st.fixed_dictionaries(
        {"message_id": st.one_of(huge_ints, json_values), "reason": st.one_of(hostile_text, json_values)}
    ),
    st.fixed_dictionaries(
        {"action": st.sampled_from(["mute", "ban", "delete", "lock", "nope"]), "target": json_values},
        optional={"minutes": huge_ints, "seconds": huge_ints, "reason": hostile_text},
    ),
    st.fixed_dictionaries({"wants_to_talk": st.one_of(st.booleans(), json_values)}),
    st.just({}),
)

frame_objects = st.builds(_frame, FRAME_TYPES, typed_fields, FORGED_FIELDS)
send_objects = st.builds(
    lambda body, cid, forged: {**forged, "type": "send", "body": body, "client_id": cid},
    hostile_text,
    st.uuids().map(str),
    FORGED_FIELDS,
)


def dumps(obj: Any, ascii_only: bool) -> str:
    """JSON text; with ascii_only, lone surrogates become `\\ud800` escapes, otherwise they stay raw."""
    return json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True)


def _mutate(text: str, cut: int, insert: str) -> str:
    cut = cut % (len(text) + 1)
    return text[:cut] + insert + text[cut + 1 :]


def _nested(opening: str, closing: str, depth: int, close: bool) -> str:
    return opening * depth + ("1" + closing * depth if close else "")


broken_json = st.one_of(
    # truncated, spliced or corrupted valid-looking frames
    st.builds(
        _mutate,
        frame_objects.map(lambda f: dumps(f, True)),
        st.integers(0, 10_000),
        st.sampled_from(["", '"', "{", "}", "]", ",", ":", "\\", "\\u", "\\ud83d", "\x00", "NaN"]),
    ),
    frame_objects.map(lambda f: dumps(f, True)).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),
    # deep nesting: lists, objects and a frame whose body is nested far down
    st.builds(_nested, st.just("["), st.just("]"), st.integers(100, 4000), st.booleans()),
    st.builds(lambda d: '{"type":"send","body":' + '{"a":' * d + "1" + "}" * d + "}", st.integers(100, 1600)),
    st.builds(lambda d: '{"type":"resume","after":' + "[" * d + "]" * d + "}", st.integers(500, 4000)),
    # NaN, Infinity and numbers too big for anything
    st.sampled_from(
        [
            '{"type":"resume","after":NaN}',
            '{"type":"resume","after":Infinity}',
            '{"type":"resume","after":-Infinity}',
            '{"type":"report","message_id":1e999,"reason":"x"}',
            '{"type":"resume","after":1e400}',
            '{"type":"resume","after":-0.0}',
            '{"type":"mod","action":"mute","target":"x","minutes":NaN}',
            '{"type":"send","body":NaN,"client_id":"00000000-0000-4000-8000-000000000000"}',
            "NaN",
            "[Infinity]",
            '{"type":"ping","type":"send"}',
            '{"type":"ping"}{"type":"ping"}',
            '\ufeff{"type":"ping"}',
            '{"type":"ping"}\x00',
            "null",
            "true",
            '"ping"',
            "[]",
            "",
            " ",
        ]
    ),
    st.builds(lambda n: '{"type":"resume","after":' + "9" * n + "}", st.integers(15, 7000)),
    st.builds(lambda n: '{"type":"resume","after":1' + "0" * n + ".5e-" + "9" * 3 + "}", st.integers(300, 5000)),
    # plain junk
    st.text(max_size=200),
)

oversize_frames = st.builds(
    lambda body, n: json.dumps(
        {"type": "send", "body": (body or "x") * (n // max(len(body), 1) + 1), "client_id": str(uuid.uuid4())}
    )[: n + 60],
    st.sampled_from(["a", "é", "你", "😀", "<script>alert(1)</script>", "\u202e"]),
    st.integers(8 * 1024 - 200, 64 * 1024 - 200),
)
# A frame whose whole text is over 8 KiB but still valid JSON (the parser must say `too_long`, not `invalid`).
oversize_valid = st.builds(
    lambda ch, n: json.dumps({"type": "send", "body": ch * n, "client_id": str(uuid.uuid4())}, ensure_ascii=False),
    st.sampled_from(["a", "é", "你", "😀", "<"]),
    st.integers(8 * 1024 + 1, 40 * 1024),
)

text_frames = st.one_of(
    st.builds(dumps, frame_objects, st.booleans()),
    st.builds(dumps, send_objects, st.booleans()),
    st.builds(dumps, send_objects, st.booleans()),
    broken_json,
    oversize_valid,
)

invalid_utf8 = st.one_of(
    st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82", b"\xfe\xff"]),
    st.binary(max_size=64),
)
binary_frames = st.one_of(
    invalid_utf8,
    st.builds(
        lambda pre, junk: pre + junk, text_frames.map(lambda t: t.encode("utf-8", "surrogatepass")), invalid_utf8
    ),
    st.just(b'{"type":"ping"}'),  # even valid JSON is refused in a binary frame
)


def _chunks(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces, start = [], 0
    for p in points:
        pieces.append(text[start:p])
        start = p
    pieces.append(text[start:])
    return [p for p in pieces if p] or [text]


# A text frame split into WebSocket continuation fragments (`websockets` sends an iterable as fragments).
fragmented_frames = st.builds(
    _chunks,
    st.one_of(st.builds(dumps, send_objects, st.just(True)), broken_json.filter(lambda s: len(s) > 1)),
    st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
)


# --- Handles -------------------------------------------------------------------------------------------

# Look-alikes of the Latin letters in the staff words, from Unicode's confusables (UTS #39) and leetspeak.
CONFUSABLES: dict[str, str] = {
    "a": "aаɑα@4ａ𝐚",
    "c": "cсⅽｃ",  # not ϲ (U+03F2): NFKC shows it as ς, which reads as no c
    "d": "dԁⅾｄ𝐝",
    "e": "eеε3ｅ",
    "f": "fｆ",
    "h": "hһｈ",
    "i": "iіι1!|ıｉ",
    "l": "lӏ1|ℓｌ",
    "m": "mмⅿｍ",
    "n": "nոｎ",
    "o": "oоοօ0ｏ𝐨",
    "r": "rгｒ",
    "s": "sѕ5$ｓ",
    "t": "tт7ｔ",
    "u": "uυսｕ",
}


def _disguise(word: str, picks: list[int], upper: list[bool], sep: str) -> str:
    out = []
    for i, ch in enumerate(word):
        options = CONFUSABLES.get(ch, ch)
        c = options[picks[i % len(picks)] % len(options)]
        out.append(c.upper() if upper[i % len(upper)] else c)
    return sep.join(out) if sep else "".join(out)


disguised_staff_handles = st.builds(
    lambda word, picks, upper, sep, pre, post: (pre + _disguise(word, picks, upper, sep) + post)[:24],
    st.sampled_from(STAFF_WORDS),
    st.lists(st.integers(0, 20), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=1, max_size=12),
    st.sampled_from(["", "", "", " ", ".", "-", "_"]),
    st.sampled_from(["", "The ", "Real ", "x"]),
    st.sampled_from(["", " 1", "_", " Team"]),
)
handle_candidates = st.one_of(
    st.text(hostile_chars, min_size=1, max_size=30),
    st.lists(hostile_piece, min_size=1, max_size=3).map(lambda parts: "".join(parts)[:40]),
    disguised_staff_handles,
    st.builds(
        lambda h, ch, pos: h[:pos] + ch + h[pos:],
        st.sampled_from(["Calm River", "Brave Heron"]),
        st.sampled_from(BIDI + INVISIBLE),
        st.integers(0, 10),
    ),
)
