import re
from html.parser import HTMLParser

import nh3
import pytest
from django.utils.html import urlize
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.sanitize import render_html


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parsed_tags(html: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "<a href='javascript:alert(1)'>click</a>",
        "javascript:alert(1)",
        '"><svg onload=alert(1)>',
        "<iframe src=//evil.example>",
        "<style>body{display:none}</style>",
    ],
)
def test_markup_in_a_message_is_shown_as_text_never_run(body):
    tags = parsed_tags(render_html(body))
    assert {tag for tag, _ in tags} <= {"a", "br"}
    for _, attrs in tags:
        assert not any(name.startswith("on") for name in attrs)
        assert not attrs.get("href", "https:").lower().startswith("javascript")


def test_web_links_become_safe_links():
    html = render_html("see https://example.org/path?a=1&b=2")
    assert '<a href="https://example.org/path?a=1&amp;b=2" rel="nofollow noopener noreferrer">' in html


def test_email_addresses_do_not_become_mailto_links():
    assert "mailto:" not in render_html("write to a@b.org")


def test_newlines_become_line_breaks():
    assert render_html("one\ntwo") == "one<br>two"


_TEXT = st.lists(
    st.sampled_from([*"ab .,:;!?@/()[]<>&\"'\n\t\r-_#=%é\u00a0", "www", "http", "com", "ORG", "&amp;", "x.co"]),
    max_size=30,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(body=_TEXT)
def test_every_body_renders_exactly_as_the_full_link_pass_would(body):
    # render_html skips urlize when no word could become a link; what a reader sees must not change.
    full = nh3.clean(
        urlize(body, trim_url_limit=60, nofollow=False, autoescape=True).replace("\n", "<br>"),
        tags={"a", "br"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel="nofollow noopener noreferrer",
    )
    assert render_html(body) == re.sub(r'<a rel="nofollow noopener noreferrer">(.*?)</a>', r"\1", full, flags=re.S)


@pytest.mark.parametrize(
    "body",
    ["Day 40 today. Feeling okay, thanks all!", 'I said "no" & <left> the party', "it's 3:30 & i'm ok", "a.b, c.d"],
)
def test_everyday_sentences_render_escaped_without_links(body):
    html = render_html(body)
    assert "<a" not in html
    assert "&lt;" in html or "<" not in body
    assert "&amp;" in html or "&" not in body
