"""The meeting protocol: every frame type, field limit, error code and close code, named once.

Pure Python (no Django). `parse_client_frame` turns raw socket text into a typed request or a
`ProtocolError` that the consumer sends back as an `error` frame; nothing malformed gets further.
docs/protocol.md documents the same contract for people writing clients.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any, Final

MAX_FRAME_BYTES: Final = 8 * 1024
MAX_BODY_CHARS: Final = 2000
MAX_REASON_CHARS: Final = 500
MAX_COMBINING_RUN: Final = 4  # more stacked marks than any script needs: zalgo is trimmed


class ClientType(StrEnum):
    SEND = "send"
    RESUME = "resume"
    HAND = "hand"
    REPORT = "report"
    PING = "ping"
    MOD = "mod"
    SUPPORT_REPLY = "support_reply"
    CHAIR = "chair"  # the chair's tools: readings, sharing, cross-talk, the share timer
    MILESTONE = "milestone"  # share my milestone (computed from my private sobriety date)


class ServerType(StrEnum):
    WELCOME = "welcome"
    MESSAGE = "message"
    DELETED = "deleted"
    RESUMED = "resumed"
    PRESENCE = "presence"
    QUEUE = "queue"
    NOTICE = "notice"
    SUPPORT = "support"
    ERROR = "error"
    PONG = "pong"
    ROOM = "room"
    MEETING = "meeting"  # the meeting's state and floor (sharing, cross-talk, who is speaking, timer)
    READINGS = "readings"
    MILESTONE = "milestone"
    # The moderation channel (/ws/moderation/): staff only.
    FLAG = "flag"
    FLAG_UPDATE = "flag_update"
    REPORT = "report"


class ErrorCode(StrEnum):
    INVALID = "invalid"
    TOO_LONG = "too_long"
    RATE_LIMITED = "rate_limited"
    MUTED = "muted"
    LOCKED = "locked"
    NOT_ALLOWED = "not_allowed"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"  # retryable: the message was NOT stored; send it again with the same client_id


class CloseCode(IntEnum):
    NOT_SIGNED_IN = 4401
    NOT_ALLOWED = 4403
    NO_SUCH_ROOM = 4404
    NOT_OPEN = 4409
    TOO_MANY = 4429  # flooding, or too many open sockets for one person
    RECONNECT = 4503  # reconnect now: your role or session changed, or the server is restarting


class ModAction(StrEnum):
    MUTE = "mute"
    UNMUTE = "unmute"
    REMOVE = "remove"
    BAN = "ban"
    DELETE = "delete"
    SLOW = "slow"
    LOCK = "lock"
    UNLOCK = "unlock"
    HOLD = "hold"
    RELEASE = "release"
    NEXT = "next"  # chair: call the next person in the speaking queue


class NoticeCode(StrEnum):
    STARTS_SOON = "starts_soon"
    MUTED = "muted"
    SLOW_MODE = "slow_mode"
    ENDING = "ending"
    LOCKED = "locked"
    RESYNC = "resync"  # the server missed messages for you: send `resume` with your last id
    REMOVED = "removed"
    LIVE = "live"  # the meeting has started
    CLOSED = "closed"  # the meeting has ended; the room is read-only
    SHARING_OPEN = "sharing_open"
    SHARING_CLOSED = "sharing_closed"
    CROSSTALK = "crosstalk"
    TIMER = "timer"
    YOUR_TURN = "your_turn"  # sent only to the person the chair called
    UNMUTED = "unmuted"
    UNLOCKED = "unlocked"
    HELD = "held"
    REPORT_RECEIVED = "report_received"  # to the reporter only
    MOD_DONE = "mod_done"  # to the chair or moderator who acted
    COUNSELLOR_ROOM = "counsellor_room"  # to a member: a counsellor opened a private room (`url`, `counsellor`)
    SUPPORT_THANKS = "support_thanks"  # to a member who answered a `support` frame


class ChairAction(StrEnum):
    READINGS = "readings"
    OPEN_SHARING = "open_sharing"
    CLOSE_SHARING = "close_sharing"
    CROSSTALK_ON = "crosstalk_on"
    CROSSTALK_OFF = "crosstalk_off"
    TIMER = "timer"  # `seconds`: the share timer (0 = off); restarts the current speaker's timer


MAX_SHARE_SECONDS: Final = 30 * 60


# Layer events (between processes). Dots, so Channels could map them to handler names.
EVENT_ROOM_FRAME: Final = "room.frame"
EVENT_ROOM_ROSTER: Final = "room.roster"
EVENT_PARTICIPANT_CONTROL: Final = "participant.control"
EVENT_PARTICIPANT_FRAME: Final = "participant.frame"  # a frame for one person's sockets only
EVENT_MODERATION_FRAME: Final = "moderation.frame"  # a frame for the staff on /ws/moderation/


class ProtocolError(Exception):
    """A frame was refused. Becomes an `error` frame; the socket stays open."""

    def __init__(self, code: ErrorCode, detail: str, client_id: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id

    def frame(self) -> dict[str, Any]:
        return error_frame(self.code, self.detail, client_id=self.client_id)


@dataclass(frozen=True, slots=True)
class SendRequest:
    body: str
    client_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    after: int


@dataclass(frozen=True, slots=True)
class HandRequest:
    up: bool


@dataclass(frozen=True, slots=True)
class ReportRequest:
    message_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class PingRequest:
    pass


@dataclass(frozen=True, slots=True)
class ModRequest:
    action: ModAction
    target: str
    minutes: int | None
    seconds: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class SupportReplyRequest:
    wants_to_talk: bool


@dataclass(frozen=True, slots=True)
class ChairRequest:
    action: ChairAction
    seconds: int | None


@dataclass(frozen=True, slots=True)
class MilestoneRequest:
    pass


ClientRequest = (
    SendRequest
    | ResumeRequest
    | HandRequest
    | ReportRequest
    | PingRequest
    | ModRequest
    | SupportReplyRequest
    | ChairRequest
    | MilestoneRequest
)

_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_ALLOWED_CONTROLS: Final = frozenset("\n\t")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def clean_text(text: str, *, field: str, max_chars: int, client_id: str | None = None) -> str:
    """Return text safe to store: no NUL, control or surrogate characters, no direction overrides, no zalgo."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept: list[str] = []
    marks = 0
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise ProtocolError(ErrorCode.INVALID, f"The {field} contains broken characters.", client_id)
        if category == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise ProtocolError(ErrorCode.INVALID, f"The {field} contains control characters.", client_id)
        if ch in _BIDI_CONTROLS or category == "Co":
            continue  # direction overrides can disguise text; private-use glyphs render as nothing
        if category in ("Mn", "Me"):
            marks += 1
            if marks > MAX_COMBINING_RUN:
                continue
        else:
            marks = 0
        kept.append(ch)
    cleaned = "".join(kept).strip()
    if len(cleaned) > max_chars:
        raise ProtocolError(ErrorCode.TOO_LONG, f"The {field} is over {max_chars} characters.", client_id)
    return cleaned


def _uuid_or_none(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= 64:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return None
    return None


def _int_field(data: dict[str, Any], name: str, *, minimum: int = 0, maximum: int = 2**53) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ProtocolError(ErrorCode.INVALID, f"`{name}` must be a whole number from {minimum} to {maximum}.")
    return value


def _optional_int(data: dict[str, Any], name: str, maximum: int) -> int | None:
    if data.get(name) is None:
        return None
    return _int_field(data, name, minimum=1, maximum=maximum)


def decode_frame(raw: str | bytes | None) -> dict[str, Any]:
    """Decode one socket frame into a JSON object, or raise ProtocolError."""
    if raw is None:
        raise ProtocolError(ErrorCode.INVALID, "Empty frame.")
    if isinstance(raw, bytes):
        raise ProtocolError(ErrorCode.INVALID, "Send JSON as text frames, not binary.")
    if len(raw) > MAX_FRAME_BYTES or len(raw.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LONG, f"Frames are at most {MAX_FRAME_BYTES} bytes.")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID, "That frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID, "A frame must be a JSON object with a `type`.")
    return data


def parse_client_frame(raw: str | bytes | None) -> ClientRequest:
    """Parse one client frame. Unknown fields (a forged handle, role or room) are ignored."""
    data = decode_frame(raw)
    kind = data.get("type")
    if kind == ClientType.SEND:
        client_id = _uuid_or_none(data.get("client_id"))
        if client_id is None:
            raise ProtocolError(ErrorCode.INVALID, "`client_id` must be a UUID made by the client.")
        body = data.get("body")
        if not isinstance(body, str):
            raise ProtocolError(ErrorCode.INVALID, "`body` must be text.", client_id)
        body = clean_text(body, field="message", max_chars=MAX_BODY_CHARS, client_id=client_id)
        if not body:
            raise ProtocolError(ErrorCode.INVALID, "The message is empty.", client_id)
        return SendRequest(body=body, client_id=uuid.UUID(client_id))
    if kind == ClientType.RESUME:
        return ResumeRequest(after=_int_field(data, "after"))
    if kind == ClientType.PING:
        return PingRequest()
    if kind == ClientType.HAND:
        up = data.get("up")
        if not isinstance(up, bool):
            raise ProtocolError(ErrorCode.INVALID, "`up` must be true or false.")
        return HandRequest(up=up)
    if kind == ClientType.REPORT:
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise ProtocolError(ErrorCode.INVALID, "`reason` must be text.")
        return ReportRequest(
            message_id=_int_field(data, "message_id", minimum=1),
            reason=clean_text(reason, field="reason", max_chars=MAX_REASON_CHARS),
        )
    if kind == ClientType.MOD:
        try:
            action = ModAction(str(data.get("action")))
        except ValueError:
            raise ProtocolError(ErrorCode.INVALID, "Unknown moderation action.") from None
        target = data.get("target", "")
        if isinstance(target, int) and not isinstance(target, bool):
            target = str(target)
        reason = data.get("reason", "")
        if not isinstance(target, str) or not isinstance(reason, str) or len(target) > 64:
            raise ProtocolError(ErrorCode.INVALID, "`target` and `reason` must be text.")
        return ModRequest(
            action=action,
            target=clean_text(target, field="target", max_chars=64),
            minutes=_optional_int(data, "minutes", 60 * 24 * 365),
            seconds=_optional_int(data, "seconds", 3600),
            reason=clean_text(reason, field="reason", max_chars=MAX_REASON_CHARS),
        )
    if kind == ClientType.SUPPORT_REPLY:
        wants = data.get("wants_to_talk")
        if not isinstance(wants, bool):
            raise ProtocolError(ErrorCode.INVALID, "`wants_to_talk` must be true or false.")
        return SupportReplyRequest(wants_to_talk=wants)
    if kind == ClientType.CHAIR:
        try:
            chair_action = ChairAction(str(data.get("action")))
        except ValueError:
            raise ProtocolError(ErrorCode.INVALID, "Unknown chair action.") from None
        seconds = None
        if chair_action == ChairAction.TIMER:
            seconds = _int_field(data, "seconds", minimum=0, maximum=MAX_SHARE_SECONDS)
        return ChairRequest(action=chair_action, seconds=seconds)
    if kind == ClientType.MILESTONE:
        return MilestoneRequest()
    raise ProtocolError(ErrorCode.INVALID, "Unknown frame type.")


# --- Server frames --------------------------------------------------------------------------------------


def encode(frame: dict[str, Any]) -> str:
    """Serialise a frame once; the same text goes to every member."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(code: ErrorCode, detail: str, *, client_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": ServerType.ERROR.value, "code": code.value, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


def notice_frame(code: NoticeCode, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": ServerType.NOTICE.value, "code": code.value, "text": text, **extra}


def pong_frame() -> dict[str, Any]:
    return {"type": ServerType.PONG.value}


# --- The moderation channel (/ws/moderation/) ------------------------------------------------------------


class ModerationClientType(StrEnum):
    ACK = "ack"
    RESOLVE = "resolve"
    NOTE = "note"
    OPEN_ROOM = "open_room"
    PING = "ping"


@dataclass(frozen=True, slots=True)
class FlagRequest:
    """`ack`, `resolve`, `note` or `open_room` for one flag."""

    kind: ModerationClientType
    flag_id: int
    outcome: str = ""
    note: str = ""


MAX_NOTE_CHARS: Final = 4000


def parse_moderation_frame(raw: str | bytes | None) -> FlagRequest | PingRequest:
    """Parse one frame from a moderator's or counsellor's socket."""
    data = decode_frame(raw)
    try:
        kind = ModerationClientType(str(data.get("type")))
    except ValueError:
        raise ProtocolError(ErrorCode.INVALID, "Unknown frame type.") from None
    if kind == ModerationClientType.PING:
        return PingRequest()
    outcome, note = data.get("outcome", ""), data.get("note", "")
    if not isinstance(outcome, str) or not isinstance(note, str) or len(outcome) > 32:
        raise ProtocolError(ErrorCode.INVALID, "`outcome` and `note` must be text.")
    if kind == ModerationClientType.RESOLVE and not outcome:
        raise ProtocolError(ErrorCode.INVALID, "Say how the flag was resolved (`outcome`).")
    return FlagRequest(
        kind=kind,
        flag_id=_int_field(data, "flag_id", minimum=1),
        outcome=outcome.strip(),
        note=clean_text(note, field="note", max_chars=MAX_NOTE_CHARS),
    )


def iso(value: datetime | None) -> str | None:
    """Return an instant as ISO 8601 in UTC with a Z, as every frame carries times."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def queue_frame(handles: list[str], *, speaking: str | None) -> dict[str, Any]:
    return {"type": ServerType.QUEUE.value, "handles": handles, "speaking": speaking}


def meeting_frame(
    *,
    state: str,
    starts_at: datetime | None,
    closes_at: datetime | None,
    opens_at: datetime | None,
    minutes_to_start: int | None,
    sharing: bool,
    crosstalk: bool,
    share_seconds: int,
    speaking: str | None,
    timer_ends_at: datetime | None,
) -> dict[str, Any]:
    return {
        "type": ServerType.MEETING.value,
        "state": state,
        "starts_at": iso(starts_at),
        "closes_at": iso(closes_at),
        "opens_at": iso(opens_at),
        "minutes_to_start": minutes_to_start,
        "sharing": sharing,
        "crosstalk": crosstalk,
        "share_seconds": share_seconds,
        "speaking": speaking,
        "timer_ends_at": iso(timer_ends_at),
    }


def readings_frame(text: str) -> dict[str, Any]:
    return {"type": ServerType.READINGS.value, "text": text}


def milestone_frame(*, handle: str, code: str, label: str) -> dict[str, Any]:
    return {
        "type": ServerType.MILESTONE.value,
        "handle": handle,
        "code": code,
        "label": label,
        "text": f"{handle} is celebrating {label}. Congratulations!",
    }
