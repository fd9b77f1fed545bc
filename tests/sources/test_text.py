"""HTML to plain text, as every connector cleans what it fetches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emberwatch.sources._text import _SPACES, _squeeze, html_to_text

_PIECES = st.sampled_from(["a", "Acme", " ", "  ", "\t", "\f", "\v", "\xa0", "é", "x y"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=4), max_size=40))
def test_squeezing_skips_only_lines_with_nothing_to_squeeze(pieces):
    line = "".join(pieces)
    assert _squeeze(line) == _SPACES.sub(" ", line)


def test_comment_markup_becomes_tidy_text():
    markup = (
        'Acme lost my order.<p>Support said &quot;wait&quot;.  <a href="https:&#x2F;&#x2F;'
        'x.example&#x2F;a" rel="nofollow">link</a><p><i>Never</i>\tagain &amp; no refund.'
    )
    assert html_to_text(markup) == (
        'Acme lost my order.\nSupport said "wait". link\nNever again & no refund.'
    )


def test_markup_that_is_not_a_tag_stays_text():
    assert html_to_text("<p>I <3 Acme</p>") == "I <3 Acme"
    assert html_to_text("x<script>var a = '<p>';</script>y") == "xy"
