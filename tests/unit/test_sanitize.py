from html.parser import HTMLParser

import pytest

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
