"""Names are data in every output: control characters and Markdown/HTML metacharacters of an identifier
never act on the terminal, the page or the Markdown (the end-to-end proof: tests/e2e/test_hostile_names.py)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from pytest_pgready.drills.content import hash_query
from pytest_pgready.report.fmt import one_line, printable
from pytest_pgready.report.html import render_html
from pytest_pgready.report.markdown import md, render_markdown
from pytest_pgready.report.pytest_html import evidence_html
from pytest_pgready.report.sample import sample_doc
from pytest_pgready.report.terminal import summary_lines
from pytest_pgready.results import CheckFailed, CheckNA, Record

TTY = 'public."tty \x1b[2J\x1b]0;pwned\x07 \x9b1m"'  # clear screen, set title, BEL, C1 CSI
BIDI = 'public."orders\u202e\u2066txt.exe\u2069\u200f"'  # displays reversed ("Trojan Source") if left raw


def _doc_with(name: str) -> dict:
    doc = sample_doc()
    for c in doc["checks"]:
        if c["status"] == "fail":
            c["summary"] = f"1 table without a primary key: {name}"
            c["evidence"]["objects"] = [name]
            c["evidence"]["remedy"] = [f"ALTER TABLE {name} ADD PRIMARY KEY (id);"]
            break
    return doc


def test_printable_shows_control_characters_and_keeps_everything_else():
    assert printable("a\x1b[2Jb\x07\x7f\x9b") == "a\\x1b[2Jb\\x07\\x7f\\x9b"
    assert printable('ü "q" <b>|') == 'ü "q" <b>|'
    assert one_line("a\n\tb\x1b") == "a b\\x1b"


def test_printable_shows_bidirectional_formatting_characters():
    assert printable(BIDI) == 'public."orders\\u202e\\u2066txt.exe\\u2069\\u200f"'
    assert printable("\u061c\u200e\u202a\u202b\u202c\u202d\u2067\u2068") == \
        "\\u061c\\u200e\\u202a\\u202b\\u202c\\u202d\\u2067\\u2068"
    assert printable("שלום עולם مرحبا") == "שלום עולם مرحبا"  # right-to-left text itself is not touched


@pytest.mark.parametrize("render", [lambda d: render_markdown(d), lambda d: render_html(d),
                                    lambda d: "\n".join(t for t, _ in summary_lines(d, width=400))])
def test_no_raw_control_character_in_any_rendering(render):
    out = render(_doc_with(TTY))
    assert not any(ch in out for ch in "\x1b\x07\x9b"), repr(out)
    assert "x1b" in out and "2J" in out  # shown (Markdown escapes its backslash and bracket further)
    out = render(_doc_with(BIDI))
    assert not any(ch in out for ch in "\u202e\u2066\u2069\u200f"), repr(out)
    assert "u202e" in out and "txt.exe" in out


def test_pytest_html_evidence_has_no_control_characters():
    out = evidence_html({"id": "SCH001", "status": "fail", "summary": TTY, "evidence": {"objects": [TTY]}})
    assert "\x1b" not in out and "\\x1b[2J" in out
    out = evidence_html({"id": "SCH001", "status": "fail", "summary": BIDI, "evidence": {"objects": [BIDI]}})
    assert "\u202e" not in out and "\\u202e" in out


def test_html_page_keeps_control_free_names_as_text():
    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.text: list[str] = []

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    name = '"we""ird sch;ema"."<script>alert(1)</script>"'
    p = Text()
    p.feed(render_html(_doc_with(name)))
    assert name in "".join(p.text)


def test_markdown_escapes_backslash_before_its_own_escapes():
    # a name ending in a backslash must not turn the escape of the next character back into markup
    assert md("a\\_b_") == "a\\\\\\_b\\_"
    assert md("x\\|y") == "x\\\\\\|y"
    assert md("\\<i>") == "\\\\&lt;i&gt;"


def test_check_messages_reaching_pytest_are_printable_but_the_record_keeps_the_name():
    rec = Record("SCH001")
    with pytest.raises(CheckFailed) as e:
        rec.fail(f"no primary key: {TTY}", objects=[TTY])
    assert "\x1b" not in str(e.value) and "\\x1b[2J" in str(e.value)
    assert rec.summary_text == f"no primary key: {TTY}" and rec.evidence["objects"] == [TTY]
    na = CheckNA(f"role {TTY} cannot read it")
    assert "\x1b" not in na.msg and na.reason == f"role {TTY} cannot read it"


def test_content_hash_uses_the_whole_row_and_quoted_labels():
    q = hash_query([("table", 'we"ird', "t", '"we""ird".t')]).as_string(None)
    assert "(t.*)::text" in q  # a column named t would otherwise be hashed instead of the row
    assert "'\"we\"\"ird\".t'" in q and 'FROM ONLY "we""ird"."t" t' in q
