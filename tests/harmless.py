"""What "rendered harmless" means for a PR report built from untrusted data, as one check.

The report is parsed as CommonMark with tables (markdown-it-py): it may link only to this
repository, hold only the report's own HTML tags, and show no text that GitHub would turn into
a mention, an issue reference or a bare link.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

# the report's own first line, the comment's marker (the default watermark), and its own tags
OUR_HTML = re.compile(
    r"^(<!-- mlops-template:pr-report -->|<!-- mlops-template report -->|</?details>"
    r"|</?summary>|</?sub>)\s*$"
)


def assert_harmless(text: str, repo: str) -> None:
    """Parsed as CommonMark with tables: links only to this repository, only the report's own
    HTML tags, and no text GitHub would turn into a mention, a reference or a bare link."""
    ours = f"https://github.com/{repo}/"
    for target in re.findall(r"(?<!\\)\]\(([^)\s]*)", text):  # even a link a parser drops
        assert target.startswith(ours), target
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = parser.parse(text)
    texts = []
    for token in tokens:
        for child in [token, *(token.children or [])]:
            if child.type in ("html_inline", "html_block"):
                for tag in re.findall(r"<[^>]*>", child.content):
                    assert OUR_HTML.match(tag), tag
            if child.type == "link_open":
                assert str(child.attrs["href"]).startswith(ours)
            assert child.type != "image"
            if child.type in ("text", "code_inline"):
                texts.append(child.content)
    shown = " ".join(texts)
    assert not re.search(r"@[A-Za-z0-9]", shown), shown
    assert not re.search(r"#[0-9]", shown) and "://" not in shown and "www." not in shown
