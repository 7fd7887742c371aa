"""Configuration: the DESIGN.md shape is accepted; bad configs name the file, key and problem."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harvester.config import load_settings, parse_settings
from harvester.config.subscriptions import Cadence
from harvester.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "harvester" / "harvester.example.toml"

# The configuration shape of DESIGN.md, verbatim (outside checks write configs like this).
DESIGN_SHAPE = """
[database]
url = "sqlite:///harvester.db"

[sources.pubmed]
email = "you@example.org"
api_key_env = "NCBI_API_KEY"

[[topics]]
name = "online-self-help-anxiety-depression"
query = '("self-help group*" OR "support group*" OR "peer support" OR forum*) AND (online OR internet) AND (anxiety OR depress*)'
sources = ["pubmed", "europepmc", "crossref", "openalex", "arxiv", "medrxiv"]
schedule = "0 6 * * *"
timezone = "Europe/Vienna"
lookback_days = 7

[[subscriptions]]
topics = ["online-self-help-anxiety-depression"]
channel = "email"
to = ["team@example.org"]
cadence = "daily 08:00"

[channels.email]
host = "smtp.example.org"
port = 587
security = "starttls"
username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"
from = "harvester@example.org"

[channels.slack]
webhook_url_env = "SLACK_WEBHOOK_URL"
"""

SECRETS = {
    "NCBI_API_KEY": "ncbi-secret-key-123",
    "SMTP_USER": "mailer",
    "SMTP_PASSWORD": "smtp-secret-pass-456",
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T000/B000/XXXX",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "harvester.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    return str(info.value)


def test_design_shape_is_accepted(tmp_path: Path, secrets_env: None) -> None:
    settings = load_settings(write(tmp_path, DESIGN_SHAPE))
    (topic,) = settings.topics
    assert topic.sources == ("pubmed", "europepmc", "crossref", "openalex", "arxiv", "medrxiv")
    assert topic.lookback_days == 7 and topic.zone.key == "Europe/Vienna"
    assert settings.source("pubmed").api_key is not None
    assert settings.source("pubmed").api_key.get_secret_value() == SECRETS["NCBI_API_KEY"]
    assert (
        settings.channels.email is not None
        and settings.channels.email.from_ == "harvester@example.org"
    )
    assert settings.subscriptions[0].parsed_cadence == Cadence("daily", 8, 0)
    # secrets never show in the settings' text form
    for secret in SECRETS.values():
        assert secret not in repr(settings) and secret not in str(settings.model_dump())


def test_example_config_is_valid_and_shipped(tmp_path: Path) -> None:
    settings = load_settings(EXAMPLE)
    assert settings.topics[0].name == "online-self-help-anxiety-depression"
    assert "self-help group*" in settings.topics[0].query
    assert (ROOT / "config" / "harvester.example.toml").read_text() == EXAMPLE.read_text()


def test_environment_database_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVESTER_DATABASE_URL", "sqlite:///elsewhere.db")
    assert load_settings(EXAMPLE).database.url == "sqlite:///elsewhere.db"
    assert (
        load_settings(EXAMPLE, database_url="sqlite:///cli.db").database.url == "sqlite:///cli.db"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("lookback_days = 7", 'lookback_days = 7\ncolour = "blue"'),
            "topics[0].colour: unknown key",
        ),
        (
            ('schedule = "0 6 * * *"', 'schedule = "0 6 * *"'),
            "topics[0].schedule: invalid cron '0 6 * *'",
        ),
        (
            ('sources = ["pubmed", "europepmc"', 'sources = ["pubmed", "scopus"'),
            "topics[0].sources: unknown source 'scopus'",
        ),
        (
            ('timezone = "Europe/Vienna"', 'timezone = "Mars/Olympus"'),
            "topics[0].timezone: unknown timezone",
        ),
        (
            ('cadence = "daily 08:00"', 'cadence = "hourly"'),
            "subscriptions[0].cadence: invalid cadence",
        ),
        (
            ('to = ["team@example.org"]', 'to = ["team@example.org\\r\\nBcc: x@y"]'),
            "subscriptions[0].to: invalid email address",
        ),
        (
            ('topics = ["online-self-help-anxiety-depression"]', 'topics = ["nope"]'),
            "subscriptions[0].topics: unknown topic 'nope'",
        ),
        (
            ('email = "you@example.org"', 'email = "you@example.org"\napi_key = "abc"'),
            "sources.pubmed: api_key must not be written in the file",
        ),
    ],
)
def test_bad_config_names_file_key_and_problem(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = EXAMPLE.read_text()
    assert change[0] in text
    message = error_of(tmp_path, text.replace(change[0], change[1], 1))
    assert message.startswith(str(tmp_path / "harvester.toml") + ": ")
    assert expected in message


def test_query_syntax_error_gives_position(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("(anxiety OR depress*)'", "(anxiety OR depress*'")
    message = error_of(tmp_path, text)
    assert "topics[0].query: query syntax error" in message
    assert "position" in message


def test_missing_environment_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # secrets only where used: an unset API key is listed (the source runs without it, with a
    # warning), not an error that stops read-only commands
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    text = EXAMPLE.read_text().replace(
        '# api_key_env = "NCBI_API_KEY"', 'api_key_env = "NCBI_API_KEY"'
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.source("pubmed").api_key is None
    (missing,) = settings.missing_secrets()
    assert (missing.key, missing.variable, missing.used_by) == (
        "sources.pubmed.api_key_env", "NCBI_API_KEY", "source",
    )  # fmt: skip
    assert "not set" in missing.describe()
    settings.require_channel_secrets()  # an API key is not a channel secret


def test_channel_secrets_are_required_only_to_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    text = DESIGN_SHAPE.replace(
        'cadence = "daily 08:00"',
        'cadence = "daily 08:00"\n\n[[subscriptions]]\ntopics = '
        '["online-self-help-anxiety-depression"]\nchannel = "slack"',
    )
    settings = load_settings(write(tmp_path, text))  # was: exit 2 for every command
    keys = {m.key for m in settings.missing_secrets() if m.used_by == "channel"}
    assert keys == {
        "channels.email.username_env", "channels.email.password_env",
        "channels.slack.webhook_url_env",
    }  # fmt: skip
    with pytest.raises(ConfigError) as info:
        settings.require_channel_secrets()
    message = str(info.value)
    assert "SLACK_WEBHOOK_URL" in message and "SMTP_PASSWORD" in message
    assert "channels.slack.webhook_url_env" in message and "needed to send" in message


def test_a_slack_subscription_still_needs_a_webhook_variable_named(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('channel = "email"', 'channel = "slack"')
    assert "webhook_url_env" in error_of(tmp_path, text)


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("[channels.email]", "[channel.email]", "channel: unknown key; did you mean 'channels'?"),
        ('mailto = "you@example.org"', 'mail_to = "you@example.org"',
         "sources.crossref.mail_to: unknown key; did you mean 'mailto'?"),
        ("max_items = 50", "max_item = 50",
         "subscriptions[0].max_item: unknown key; did you mean 'max_items'?"),
        ("lookback_days = 7 ", "lookback_day = 7 ",
         "topics[0].lookback_day: unknown key; did you mean 'lookback_days'?"),
        ('schedule = "0 6 * * *"', 'schedule = "every thirty minutes"',
         "topics[0].schedule: invalid interval 'every thirty minutes': use every 90s, every 30m"),
        ('schedule = "0 6 * * *"', 'schedule = "0 6 *"',
         "a cron has 5 fields: minute hour day-of-month month day-of-week"),
        ("lookback_days = 7 ", 'lookback_days = "seven" ',
         "topics[0].lookback_days: expected a whole number, got a string 'seven'"),
        ('to = ["team@example.org"]', "to = 5",
         "subscriptions[0].to: expected a list, got a number 5"),
    ],
)  # fmt: skip
def test_messages_a_newcomer_understands(
    tmp_path: Path, replace: str, by: str, expected: str
) -> None:
    text = EXAMPLE.read_text()
    assert replace in text
    message = error_of(tmp_path, text.replace(replace, by))
    assert expected in message
    assert "Input should be" not in message  # pydantic's words, not the user's


def test_every_n_minutes_and_a_single_address_are_understood(tmp_path: Path) -> None:
    text = (
        EXAMPLE.read_text()
        .replace('schedule = "0 6 * * *"', 'schedule = "every 30 minutes"')
        .replace('to = ["team@example.org"]', 'to = "a@b.org"')
        .replace('topics = ["online-self-help-anxiety-depression"]',
                 'topics = "online-self-help-anxiety-depression"')
    )  # fmt: skip
    settings = load_settings(write(tmp_path, text))
    assert settings.topics[0].interval_seconds == 1800
    assert settings.subscriptions[0].to == ("a@b.org",)
    assert settings.subscriptions[0].topics == ("online-self-help-anxiety-depression",)
    for spelled, seconds in (("every 2 hours", 7200), ("every 90s", 90), ("every 1 hour", 3600)):
        one = load_settings(write(tmp_path, text.replace("every 30 minutes", spelled)))
        assert one.topics[0].interval_seconds == seconds


def test_secret_value_never_in_error(tmp_path: Path, secrets_env: None) -> None:
    text = DESIGN_SHAPE.replace("port = 587", 'port = "not a port"')
    message = error_of(tmp_path, text)
    assert "channels.email.port" in message
    for secret in SECRETS.values():
        assert secret not in message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in error_of(tmp_path, "[topics\nname=")
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.toml")


def test_a_config_that_is_not_utf8_names_the_byte_and_offset(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    # a comment saved as Latin-1 by an editor: "café" with é as the single byte 0xe9
    path = tmp_path / "harvester.toml"
    path.write_bytes(text.encode("utf-8") + "# café\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    offset = len(text.encode("utf-8")) + len("# caf")
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 0xe9 at offset {offset})"


@pytest.mark.parametrize("opener", ["[", "{a = "])
def test_deeply_nested_toml_is_a_config_error_naming_the_line(tmp_path: Path, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = text.count("\n")
    deep = f'extra = "[not {{counted"  # ]]\nx = {opener * 50_000}1{closer * 50_000}\n'
    message = error_of(tmp_path, text + deep)
    assert message == (
        f"{tmp_path / 'harvester.toml'}: not valid TOML: arrays or inline tables nested too "
        f"deeply (line {lines + 2})"
    )


def test_a_query_of_fifty_thousand_parentheses_is_a_config_error(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("query = '") + len("query = '")
    end = text.index("'", start)
    deep = "(" * 50_000 + "anxiety" + ")" * 50_000
    message = error_of(tmp_path, text[:start] + deep + text[end:])
    assert message.startswith(
        f"{tmp_path / 'harvester.toml'}: topics[0].query: query syntax error: nesting deeper "
        "than 100 levels of parentheses and NOT at position 100: …((("
    )
    assert "\n" not in message and len(message) < 400


def test_duplicate_topic_names(tmp_path: Path) -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    data["topics"].append(dict(data["topics"][0]))
    with pytest.raises(ConfigError, match=r"topics\[1\].name: duplicate topic name"):
        parse_settings(data, path="x.toml")


@pytest.mark.parametrize(
    ("text", "cadence"),
    [
        ("immediate", Cadence("immediate")),
        ("daily 07:30", Cadence("daily", 7, 30)),
        ("weekly mon 09:00", Cadence("weekly", 9, 0, "mon")),
    ],
)
def test_cadence(text: str, cadence: Cadence) -> None:
    assert Cadence.parse(text) == cadence


def test_every_secret_is_known_to_the_log_redactor(tmp_path: Path, secrets_env: None) -> None:
    import io

    import structlog

    from harvester.logs import configure_logging

    settings = load_settings(write(tmp_path, DESIGN_SHAPE))
    assert sorted(settings.secret_values()) == sorted(SECRETS.values())
    out = io.StringIO()
    configure_logging("json", secrets=settings.secret_values(), stream=out)
    try:
        structlog.get_logger("t").warning("oops", detail=f"failed with {SECRETS['SMTP_PASSWORD']}")
    finally:
        configure_logging("json")
    assert SECRETS["SMTP_PASSWORD"] not in out.getvalue() and "REDACTED" in out.getvalue()


def test_a_dry_run_subscription_needs_no_channel_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    text = DESIGN_SHAPE.replace(
        'cadence = "daily 08:00"', 'cadence = "daily 08:00"\ndry_run = true'
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.subscriptions[0].dry_run
    assert not [m for m in settings.missing_secrets() if m.used_by == "channel"]
    settings.require_channel_secrets()
    example = load_settings(EXAMPLE)
    assert example.subscriptions[0].dry_run  # the example mails no made-up address
