"""The escaping helpers of emberwatch.text added for services that read Markdown or ping."""

from __future__ import annotations

from emberwatch.text import markdown_text, no_pings


def test_markdown_text_escapes_what_makes_links_styles_code_and_spoilers():
    assert markdown_text("[a](b) *c* _d_ ~e~ `f` ||g|| <h> \\") == (
        r"\[a\](b) \*c\* \_d\_ \~e\~ \`f\` \|\|g\|\| \<h\> \\"
    )


def test_markdown_text_leaves_plain_words_and_block_marks_alone():
    assert markdown_text("plain words, 1. # - (x) stay!") == "plain words, 1. # - (x) stay!"


def test_no_pings_turns_every_at_sign_fullwidth():
    assert no_pings("@everyone @here <@123> a@b") == "＠everyone ＠here <＠123> a＠b"
