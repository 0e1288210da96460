import json
import uuid

import pytest

from chat import protocol
from chat.protocol import ErrorCode, ProtocolError, parse_client_frame

CID = str(uuid.uuid4())


def send(body, **extra):
    return json.dumps({"type": "send", "body": body, "client_id": CID, **extra})


def test_a_send_frame_becomes_a_send_request():
    request = parse_client_frame(send("hello"))
    assert request == protocol.SendRequest(body="hello", client_id=uuid.UUID(CID))


def test_forged_identity_fields_are_ignored():
    request = parse_client_frame(send("hi", handle="Moderator", role="admin", room="other-room", user_id=1))
    assert request == protocol.SendRequest(body="hi", client_id=uuid.UUID(CID))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", ErrorCode.INVALID),
        ("[]", ErrorCode.INVALID),
        ('"text"', ErrorCode.INVALID),
        ('{"type": "send", "body": NaN, "client_id": "x"}', ErrorCode.INVALID),
        ('{"type": "resume", "after": Infinity}', ErrorCode.INVALID),
        ('{"type": "resume", "after": ' + "9" * 5000 + "}", ErrorCode.INVALID),
        ("[" * 5000 + "]" * 5000, ErrorCode.TOO_LONG),
        ("[" * 3000 + "]" * 3000, ErrorCode.INVALID),
        ('{"type": "teleport"}', ErrorCode.INVALID),
        ('{"type": "send", "body": 5, "client_id": "' + CID + '"}', ErrorCode.INVALID),
        ('{"type": "send", "body": "hi", "client_id": "not-a-uuid"}', ErrorCode.INVALID),
        ('{"type": "send", "body": "   ", "client_id": "' + CID + '"}', ErrorCode.INVALID),
        ('{"type": "resume", "after": -1}', ErrorCode.INVALID),
        ('{"type": "resume", "after": true}', ErrorCode.INVALID),
        ('{"type": "hand", "up": "yes"}', ErrorCode.INVALID),
        ('{"type": "mod", "action": "explode", "target": "x"}', ErrorCode.INVALID),
        (b'{"type": "ping"}', ErrorCode.INVALID),
        (None, ErrorCode.INVALID),
        ("x" * (8 * 1024 + 1), ErrorCode.TOO_LONG),
    ],
)
def test_bad_frames_are_refused_with_a_code_and_a_sentence(raw, code):
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(raw)
    assert refused.value.code == code
    assert refused.value.frame()["type"] == "error"
    assert refused.value.detail


@pytest.mark.parametrize("body", ["nul\x00byte", "bell\x07", "escape\x1b[31m", "lone \ud800 surrogate"])
def test_control_and_surrogate_characters_never_get_through(body):
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(json.dumps({"type": "send", "body": body, "client_id": CID}))
    assert refused.value.code == ErrorCode.INVALID
    assert refused.value.client_id == CID  # the sender can mark that message unsent


def test_a_body_over_2000_characters_is_too_long():
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(send("a" * 2001))
    assert refused.value.code == ErrorCode.TOO_LONG
    assert parse_client_frame(send("a" * 2000)).body == "a" * 2000


def test_direction_overrides_are_stripped_and_zalgo_is_trimmed():
    request = parse_client_frame(send("abc\u202edef"))
    assert request.body == "abcdef"
    zalgo = "e" + "\u0301" * 30
    assert parse_client_frame(send(zalgo)).body == "e" + "\u0301" * protocol.MAX_COMBINING_RUN


def test_bengali_and_emoji_sequences_survive_cleaning():
    text = "আমি ভালো আছি 👨‍👩‍👧 क्षमा"
    assert parse_client_frame(send(text)).body == text


def test_newlines_are_kept_and_carriage_returns_normalised():
    assert parse_client_frame(send("one\r\ntwo\rthree")).body == "one\ntwo\nthree"


def test_error_frames_echo_the_client_id_of_a_send():
    frame = protocol.error_frame(ErrorCode.MUTED, "You are muted.", client_id=CID)
    assert frame == {"type": "error", "code": "muted", "detail": "You are muted.", "client_id": CID}
