"""`emberwatch sources test` against real loopback servers answering like the APIs do."""

import pytest
from click.testing import CliRunner

from emberwatch.cli import cli
from emberwatch.demo.servers import HTTPServer, Reply


@pytest.mark.parametrize(
    ("reply", "expected", "code"),
    [
        (Reply(200, b'{"hits": [], "page": 0, "nbPages": 0}'), "hn: ok: 0 items", 0),
        (Reply(401, b'{"message": "bad key"}'), "hn: auth failed (HTTP 401)", 1),
        (
            Reply(429, b"slow down", headers={"Retry-After": "30"}),
            "rate-limited (HTTP 429; retry after 30 s)",
            1,
        ),
        (Reply(404, b"{}"), "not found (HTTP 404)", 1),
        (Reply(200, b"<html>login</html>"), "failed: hackernews: body is not JSON", 1),
    ],
)
def test_sources_test_says_plainly_what_came_back(tmp_path, reply, expected, code):
    server = HTTPServer(lambda method, path, body: reply).start()
    try:
        config = tmp_path / "c.toml"
        config.write_text(
            '[[brands]]\nname = "acme"\ninclude = ["acme"]\n'
            '[[sources]]\nname = "hn"\ntype = "hackernews"\nquery = "acme"\n'
            f'base_url = "{server.base_url}"\n'
        )
        result = CliRunner().invoke(cli, ["sources", "test", "hn", "--config", str(config)])
    finally:
        server.stop()
    assert result.exit_code == code, result.output
    assert expected in result.output
