import pytest

from accounts.handles import HandleError, clean_handle, skeleton, suggest_handle


@pytest.mark.parametrize("handle", ["Hopeful Heron 42", "ravi_k", "Mira-B", "শান্তি", "शांति सागर", "O'Neil"])
def test_ordinary_handles_are_accepted(handle):
    assert clean_handle(handle).display == handle


@pytest.mark.parametrize(
    ("handle", "why"),
    [
        ("ab", "3 to 24"),
        ("x" * 25, "3 to 24"),
        ("ravi@example.com", "email"),
        ("call 9830012345", "phone"),
        ("www.mysite.in", "web address"),
        ("https://x.in", "web address"),
        ("Moderator", "staff"),
        ("M0der@tor", ""),
        ("Thе Admin", "staff"),  # Cyrillic е
        ("Counsellor Jo", "staff"),
        ("chair person", "staff"),
        ("a\u202egnp.exe", "invisible or text-direction"),
        ("zero\u200bwidth", "invisible or text-direction"),
        ("nul\x00name", "control"),
        ("<script>", "Use letters"),
    ],
)
def test_unsafe_handles_are_refused_with_a_sentence(handle, why):
    with pytest.raises(HandleError) as refused:
        clean_handle(handle)
    message = str(refused.value)
    assert message.endswith(".")
    assert why in message


def test_look_alike_handles_share_a_key():
    assert skeleton("Ravi") == skeleton("RAVI") == skeleton("Rаvi") == skeleton("R a v i")
    assert skeleton("ＲＡＶＩ") == skeleton("ravi")  # full-width folds under NFKC
    assert skeleton("Ravi") != skeleton("Ravindra")
    assert skeleton("RIVER") == skeleton("RlVER") == skeleton("R1VER")  # I, l and 1 look alike


def test_suggested_handles_are_valid():
    for _ in range(50):
        clean_handle(suggest_handle())
