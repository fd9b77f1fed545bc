from pathlib import Path

import pytest
from click.testing import CliRunner

from emberwatch.cli import cli
from emberwatch.config import load_config, validate_config
from emberwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
ENV = {
    "SMTP_PASSWORD": "hunter2-secret",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/T/B/xyz",
    "EMBERWATCH_LINK_SECRET": "0123456789abcdef0123",
}

MINIMAL = {"brands": [{"name": "acme", "include": ["Acme"]}]}


def test_the_example_config_is_valid_and_reads_secrets_from_the_environment():
    config = load_config(REPO / "config" / "emberwatch.example.toml", environ=ENV)
    assert config.channels.slack.webhook_url.get_secret_value() == ENV["SLACK_WEBHOOK_URL"]
    assert "hunter2" not in repr(config)


def test_defaults_are_a_sqlite_file_and_warning_alerts():
    config = validate_config(MINIMAL, "x.toml", {})
    assert config.database_url == "sqlite:///./emberwatch.db"
    assert config.thresholds.min_severity == "warning"


def test_every_problem_is_reported_at_once_with_file_and_key():
    raw = {
        "brands": [{"name": "acme", "include": ["Acme"], "colour": "red"}],
        "sources": [
            {"name": "news", "type": "rss", "url": "http://x", "interval": "often"},
            {"name": "hn", "type": "hackernews"},
            {"name": "what", "type": "myspace"},
        ],
        "channels": {"slack": {"webhook_url": "${NOPE}"}},
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, "cfg.toml", {})
    lines = str(caught.value).splitlines()
    assert "cfg.toml: brands[acme].colour: unknown key" in lines[1] or any(
        line.startswith("cfg.toml: brands[acme].colour: unknown key") for line in lines
    )
    assert any(line.startswith("cfg.toml: sources[news].interval: ") for line in lines)
    assert any(line == "cfg.toml: sources[hn].query: Field required" for line in lines)
    assert any("sources[what]: unknown source type" in line for line in lines)
    assert any(
        "channels.slack.webhook_url: environment variable NOPE is not set" in line for line in lines
    )
    assert len(lines) == 5


def test_an_empty_environment_variable_is_an_error_naming_the_key():
    raw = {**MINIMAL, "channels": {"slack": {"webhook_url": "${HOOK}"}}}
    with pytest.raises(
        ConfigError, match=r"channels.slack.webhook_url: environment variable HOOK is empty"
    ):
        validate_config(raw, "x.toml", {"HOOK": ""})


def test_a_source_serving_an_undefined_brand_is_rejected():
    raw = {
        **MINIMAL,
        "sources": [{"name": "n", "type": "rss", "url": "http://x", "brands": ["ac"]}],
    }
    with pytest.raises(ConfigError, match="undefined brand 'ac'"):
        validate_config(raw, "x.toml", {})


def test_duplicate_source_names_are_rejected():
    source = {"name": "n", "type": "rss", "url": "http://x"}
    with pytest.raises(ConfigError, match="source name 'n' is used twice"):
        validate_config({**MINIMAL, "sources": [source, source]}, "x.toml", {})


def test_an_unknown_time_zone_is_rejected():
    raw = {
        **MINIMAL,
        "channels": {
            "email": {"host": "h", "sender": "a@b", "recipients": ["c@d"]},
            "digest": {"recipients": ["o@d"], "timezone": "Mars/Olympus"},
        },
    }
    with pytest.raises(ConfigError, match=r"channels\.digest\.timezone: unknown IANA time zone"):
        validate_config(raw, "x.toml", {})


def test_durations_accept_units():
    raw = {
        **MINIMAL,
        "sources": [{"name": "n", "type": "rss", "url": "http://x", "interval": "90s"}],
    }
    assert validate_config(raw, "x.toml", {}).sources[0].interval.total_seconds() == 90


def test_check_config_exits_2_and_never_prints_a_secret(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\nbogus = 1\n'
        '[channels.slack]\nwebhook_url = "${SLACK_WEBHOOK_URL}"\ntimeout = "soon"\n'
    )
    result = CliRunner().invoke(cli, ["check-config", str(path)], env=ENV)
    assert result.exit_code == 2
    assert f"{path}: brands[acme].bogus: unknown key" in result.output
    assert f"{path}: channels.slack.timeout:" in result.output
    assert "xyz" not in result.output and "Traceback" not in result.output


def test_check_config_reports_a_missing_file_and_bad_toml(tmp_path):
    missing = CliRunner().invoke(cli, ["check-config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "file not found" in missing.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[[brands]\n")
    result = CliRunner().invoke(cli, ["check-config", str(broken)])
    assert result.exit_code == 2 and "not valid TOML" in result.output


def test_the_demo_config_is_valid():
    env = {
        "DEMO_OUTPUT": "/tmp/x",
        "DEMO_FEEDS": "http://127.0.0.1:1",
        "DEMO_SMTP_PORT": "25",
        "DEMO_SLACK_WEBHOOK": "http://127.0.0.1:2/hook",
        "DEMO_HTTP_PORT": "8787",
    }
    config = load_config(REPO / "config" / "demo.toml", environ=env)
    assert config.channels.email.port == 25


def problems_of(raw, environ=None, **kwargs):
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, "x.toml", environ or {}, **kwargs)
    return str(caught.value).splitlines()


RSS = {"name": "news", "type": "rss", "url": "https://example.com/feed"}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"sources": [{**RSS, "interval": "0s"}]}, "sources[news].interval"),
        ({"sources": [{**RSS, "interval": 0}]}, "sources[news].interval"),
        ({"sources": [{**RSS, "timeout": "0s"}]}, "sources[news].timeout"),
        ({"sources": [{**RSS, "backfill": -5}]}, "sources[news].backfill"),
        ({"delivery": {"interval": "0s"}}, "delivery.interval"),
        ({"delivery": {"lease": "0s"}}, "delivery.lease"),
        ({"refresh": {"interval": "0m"}}, "refresh.interval"),
        ({"evaluate_interval": "0s"}, "evaluate_interval"),
        ({"database_outage_limit": "0s"}, "database_outage_limit"),
        ({"escalation": {"after": "0s"}}, "escalation.after"),
        ({"grouping": {"window": "0h"}}, "grouping.window"),
        ({"poll_jitter": -1}, "poll_jitter"),
        (
            {"routes": [{"name": "r", "channels": ["digest"], "repeat_interval": "0s"}]},
            "routes[r].repeat_interval",
        ),
    ],
)
def test_a_duration_that_must_be_positive_is_rejected_at_its_key(raw, key):
    lines = problems_of({**MINIMAL, **raw})
    assert len(lines) == 1
    assert lines[0].startswith(f"x.toml: {key}: must ")


def test_zero_is_fine_where_it_means_at_once():
    raw = {
        **MINIMAL,
        "poll_jitter": "0s",
        "delivery": {"slack_min_gap": "0s"},
        "routes": [{"name": "r", "channels": ["digest"], "group_wait": "0s"}],
        "sources": [{**RSS, "backfill": "0s"}],
    }
    assert validate_config(raw, "x.toml", {}).poll_jitter.total_seconds() == 0


def test_check_config_rejects_a_zero_interval(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
        '[[sources]]\nname = "news"\ntype = "rss"\nurl = "https://x.example/feed"\n'
        'interval = "0s"\n'
    )
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 2
    assert (
        result.output
        == f'{path}: sources[news].interval: must be longer than zero, e.g. "30s" or "5m"\n'
    )


@pytest.mark.parametrize(
    "url", ["sqlite:///./e.db", "sqlite://", "postgresql://u@h/db", "postgresql+psycopg://h/db"]
)
def test_supported_database_urls_are_accepted(url):
    assert validate_config({**MINIMAL, "database_url": url}, "x.toml", {}).database_url == url


@pytest.mark.parametrize(
    "url",
    ["mysql://root:pw-s3cret@db/ew", "postgresql+asyncpg://u:pw-s3cret@h/db", "emberwatch.db"],
)
def test_an_unsupported_database_url_names_the_supported_schemes_without_the_password(url):
    lines = problems_of({**MINIMAL, "database_url": url})
    assert len(lines) == 1 and lines[0].startswith("x.toml: database_url: unsupported database URL")
    assert "sqlite://, postgresql://, postgresql+psycopg://" in lines[0]
    assert "s3cret" not in lines[0]


EMAIL = {"host": "smtp.example.com", "sender": "ew@acme.example", "recipients": ["m@acme.example"]}


@pytest.mark.parametrize(
    ("channels", "key"),
    [
        (
            {"email": {**EMAIL, "recipients": ["marketing at brewly"]}},
            "channels.email.recipients[0]",
        ),
        (
            {"email": {**EMAIL, "recipients": ["m@acme.example", "@acme"]}},
            "channels.email.recipients[1]",
        ),
        ({"email": {**EMAIL, "sender": "emberwatch"}}, "channels.email.sender"),
        ({"email": {**EMAIL, "sender": "Emberwatch <no at sign>"}}, "channels.email.sender"),
        ({"email": EMAIL, "digest": {"recipients": ["ops@"]}}, "channels.digest.recipients[0]"),
    ],
)
def test_an_email_address_that_is_not_one_is_rejected(channels, key):
    lines = problems_of({**MINIMAL, "channels": channels})
    assert len(lines) == 1
    assert lines[0].startswith(f"x.toml: {key}: ") and "is not an email address" in lines[0]


def test_an_escalation_address_must_be_one():
    raw = {**MINIMAL, "channels": {"email": EMAIL}, "escalation": {"emails": ["legal at acme"]}}
    assert problems_of(raw)[0].startswith("x.toml: escalation.emails[0]: 'legal at acme' is not")


def test_addresses_with_a_display_name_or_a_local_host_are_accepted():
    email = {**EMAIL, "sender": "Emberwatch <ew@acme.example>", "recipients": ["root@localhost"]}
    config = validate_config({**MINIMAL, "channels": {"email": email}}, "x.toml", {})
    assert config.channels.email.recipients == ["root@localhost"]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"sources": [{**RSS, "url": "example.com/feed"}]}, "sources[news].url"),
        ({"sources": [{**RSS, "url": "ftp://example.com/feed"}]}, "sources[news].url"),
        (
            {
                "sources": [
                    {"name": "hn", "type": "hackernews", "query": "a", "base_url": "hn.algolia.com"}
                ]
            },
            "sources[hn].base_url",
        ),
        (
            {"http": {"secret": "0123456789abcdef", "public_url": "ew.acme.example"}},
            "http.public_url",
        ),
        (
            {"channels": {"slack": {"webhook_url": "hooks.slack.com/T/B/tok3n"}}},
            "channels.slack.webhook_url",
        ),
    ],
)
def test_a_url_without_a_scheme_is_rejected(raw, key):
    lines = problems_of({**MINIMAL, **raw})
    assert len(lines) == 1
    assert lines[0].startswith(f"x.toml: {key}: must be an http:// or https:// URL")
    assert "tok3n" not in lines[0]


def test_an_undefined_brand_is_reported_at_the_sources_brands_key():
    raw = {**MINIMAL, "sources": [{**RSS, "name": "acme-hn", "brands": ["acme", "ac"]}]}
    assert problems_of(raw) == [
        "x.toml: sources[acme-hn].brands: source 'acme-hn' serves undefined brand 'ac'; "
        "defined brands: acme"
    ]


def test_every_cross_reference_problem_is_reported_at_its_own_key():
    raw = {
        **MINIMAL,
        "sources": [{**RSS, "brands": ["nope"]}, RSS],
        "routes": [{"name": "r", "channels": ["slack"], "match": {"source": ["gone"]}}],
    }
    assert problems_of(raw) == [
        "x.toml: sources[news].name: source name 'news' is used twice; names must be unique",
        "x.toml: sources[news].brands: source 'news' serves undefined brand 'nope'; "
        "defined brands: acme",
        "x.toml: routes[r].channels: route 'r' uses channel 'slack', but [channels.slack] "
        "is not configured",
        "x.toml: routes[r].match.source: route 'r' matches undefined source 'gone'",
    ]


def test_an_unset_secret_is_reported_once():
    raw = {
        **MINIMAL,
        "channels": {"slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"}},
        "http": {"secret": "${EMBERWATCH_LINK_SECRET}"},
    }
    assert problems_of(raw) == [
        "x.toml: channels.slack.webhook_url: environment variable SLACK_WEBHOOK_URL is not set",
        "x.toml: http.secret: environment variable EMBERWATCH_LINK_SECRET is not set",
    ]


def test_without_need_for_secrets_unset_ones_are_tolerated_but_other_problems_are_not():
    raw = {
        **MINIMAL,
        "channels": {"slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"}},
        "http": {"secret": "${EMBERWATCH_LINK_SECRET}"},
    }
    config = validate_config(raw, "x.toml", {}, need_secrets=False)
    assert config.channels.slack is not None and config.http is not None
    broken = {**raw, "channels": {"email": {**EMAIL, "port": "${SMTP_PORT}"}}}
    assert problems_of(broken, need_secrets=False) == [
        "x.toml: channels.email.port: environment variable SMTP_PORT is not set"
    ]


@pytest.mark.parametrize("key", ["channels", "receivers"])
def test_a_route_names_its_channels_under_channels_or_the_old_key_receivers(key):
    raw = {**MINIMAL, "routes": [{"name": "r", key: ["digest"], "group_wait": "0s"}]}
    (route,) = validate_config(raw, "x.toml", {}).routes
    assert route.channels == ["digest"]


def test_a_route_giving_both_channels_and_receivers_is_refused_in_one_line():
    raw = {**MINIMAL, "routes": [{"name": "r", "channels": ["digest"], "receivers": ["digest"]}]}
    assert problems_of(raw) == [
        "x.toml: routes[r]: give channels or receivers (its old name), not both"
    ]
