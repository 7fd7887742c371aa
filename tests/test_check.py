"""`harvester check`, and read-only commands without secrets: the installed command, with the
API emulator, the aiosmtpd server and the Slack-like server on loopback."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ENV, require_shared
from tests.emulator import Emulator
from tests.slack_server import SlackWebhookServer
from tests.smtp_server import LoopbackSMTP
from tests.test_cli import run
from tests.test_trial import point_at

pytestmark = pytest.mark.integration

NO_SECRETS = {
    "HARVESTER_DATABASE_URL": "",
    "OPENALEX_API_KEY": "",
    "SLACK_WEBHOOK_URL": "",
    "NCBI_API_KEY": "",
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(require_shared()) as emu:
        yield emu


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator) -> Path:
    emulator.reset()
    run("init", cwd=tmp_path)
    point_at(tmp_path / "config" / "harvester.toml", emulator)
    return tmp_path


def config_of(project: Path) -> Path:
    return project / "config" / "harvester.toml"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_smtp_and_slack(project: Path, smtp_port: int) -> None:
    config = config_of(project)
    text = config.read_text().replace("port = 25", f"port = {smtp_port}")
    # the example's email subscription only previews; these tests send
    text = text.replace("\ndry_run = true\n", "\n").replace(
        'team@example.org"]', 'digest@lab.local"]'
    )
    text = text.replace('host = "localhost"', 'host = "127.0.0.1"')
    text = text.replace(
        '# [channels.slack]\n# webhook_url_env = "SLACK_WEBHOOK_URL"',
        '[channels.slack]\nwebhook_url_env = "SLACK_WEBHOOK_URL"',
    )
    text = text.replace(
        "[channels.email]",
        '[[subscriptions]]\ntopics = ["online-self-help-anxiety-depression"]\n'
        'channel = "slack"\n\n[channels.email]',
    )
    config.write_text(text)


def test_check_passes_on_the_example_config_without_any_secret(project: Path) -> None:
    out = run("check", cwd=project, env=NO_SECRETS).stdout
    assert out.startswith("✓ config: config/harvester.toml: valid (1 topics, 1 subscriptions)")
    assert "⚠ sources.openalex: skipped: it needs an API key (export OPENALEX_API_KEY)" in out
    assert "⚠ sources.crossref.mailto: you@example.org is a placeholder" in out
    assert "⚠ subscriptions[0].dry_run: previews only" in out
    assert "✗" not in out
    assert not list(project.glob("harvester.db*"))


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("[channels.email]", "[channel.email]", "channel: unknown key; did you mean 'channels'?"),
        ('schedule = "0 6 * * *"', 'schedule = "every 30 mins please"',
         "topics[0].schedule: invalid interval"),
        ('topics = ["online-self-help-anxiety-depression"]', 'topics = ["no-such-topic"]',
         "subscriptions[0].topics: unknown topic 'no-such-topic'"),
        ('cadence = "daily 08:00"', 'cadence = "daily at eight"', "subscriptions[0].cadence"),
        ('timezone = "Europe/Vienna"', 'timezone = "Vienna"', "topics[0].timezone"),
    ],
)  # fmt: skip
def test_check_fails_on_a_broken_config_naming_the_key(
    project: Path, replace: str, by: str, expected: str
) -> None:
    config = config_of(project)
    assert replace in config.read_text()
    config.write_text(config.read_text().replace(replace, by))
    proc = run("check", cwd=project, env=NO_SECRETS, check=2)
    assert expected in proc.stderr


def test_check_warns_about_a_cadence_across_timezones(project: Path) -> None:
    config = config_of(project)
    text = config.read_text().replace(
        "[[subscriptions]]",
        '[[topics]]\nname = "nlp"\nquery = "NLP"\nsources = ["pubmed"]\n'
        'timezone = "America/New_York"\n\n[[subscriptions]]',
    )
    text = text.replace(
        'topics = ["online-self-help-anxiety-depression"]',
        'topics = ["online-self-help-anxiety-depression", "nlp"]',
    )
    config.write_text(text)
    out = run("check", cwd=project, env=NO_SECRETS).stdout
    assert "⚠ subscriptions[0].cadence: 'daily 08:00' is read in Europe/Vienna" in out
    assert "nlp (America/New_York)" in out


def test_connect_reports_smtp_down_and_a_slack_webhook_answering_404(project: Path) -> None:
    with SlackWebhookServer() as slack:
        with_smtp_and_slack(project, closed_port())
        env = {**NO_SECRETS, "SLACK_WEBHOOK_URL": slack.url + "-revoked"}
        proc = run("check", "--connect", cwd=project, env=env, check=1)
        lines = proc.stdout.splitlines()
        assert any(line.startswith("✗ smtp 127.0.0.1:") and "refused" in line for line in lines)
        assert any(line.startswith("✗ slack SLACK_WEBHOOK_URL") and "404" in line for line in lines)
        assert any(line.startswith("✓ connect pubmed:") for line in lines)
        assert slack.posts == []


def test_connect_and_send_test_against_working_servers(project: Path) -> None:
    smtp = LoopbackSMTP()
    smtp.start()
    try:
        with SlackWebhookServer() as slack:
            with_smtp_and_slack(project, smtp.port)
            env = {**NO_SECRETS, "SLACK_WEBHOOK_URL": slack.url}
            out = run("check", "--connect", cwd=project, env=env).stdout
            assert f"✓ smtp 127.0.0.1:{smtp.port}: EHLO ok" in out
            assert "✓ slack SLACK_WEBHOOK_URL (subscriptions[1]): webhook exists" in out
            assert smtp.messages == [] and slack.posts == []  # nothing sent without --send-test
            out = run("check", "--connect", "--send-test", cwd=project, env=env).stdout
            assert "test message posted" in out and "test email sent to digest@lab.local" in out
            assert len(smtp.messages) == 1 and len(slack.posts) == 1
    finally:
        smtp.stop()


def test_connect_with_a_channel_secret_unset_is_a_config_error(project: Path) -> None:
    with_smtp_and_slack(project, closed_port())
    out = run("check", cwd=project, env=NO_SECRETS).stdout  # without --connect: a warning
    assert "⚠ channels.slack.webhook_url_env: SLACK_WEBHOOK_URL is not set" in out
    proc = run("check", "--connect", cwd=project, env=NO_SECRETS, check=2)
    assert "✗ channels.slack.webhook_url_env: SLACK_WEBHOOK_URL is not set" in proc.stdout


def test_read_only_commands_run_without_secrets_sending_ones_name_them(project: Path) -> None:
    with_smtp_and_slack(project, closed_port())
    config = config_of(project)
    config.write_text(
        config.read_text().replace('# api_key_env = "NCBI_API_KEY"', 'api_key_env = "NCBI_API_KEY"')
    )
    run("status", cwd=project, env=NO_SECRETS)  # exit 2 before: SLACK_WEBHOOK_URL not set
    run("export", "--format", "csv", cwd=project, env=NO_SECRETS)
    run("feed", "online-self-help-anxiety-depression", "-o", "f.xml", cwd=project, env=NO_SECRETS)
    run("digest", "--dry-run", "--preview-dir", "p", cwd=project, env=NO_SECRETS)
    sending = run("digest", cwd=project, env=NO_SECRETS, check=2)
    assert "channels.slack.webhook_url_env names the environment variable SLACK_WEBHOOK_URL" in (
        sending.stderr
    )
    assert "NCBI_API_KEY" not in sending.stderr  # an API key is not what sending needs


def test_a_postgresql_database_that_does_not_exist_is_named_with_how_to_create_it(
    project: Path,
) -> None:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV} to run this test")
    url = base.rsplit("/", 1)[0] + "/hv_try_never_created"
    proc = run("status", cwd=project, env={**NO_SECRETS, "HARVESTER_DATABASE_URL": url}, check=2)
    assert "database 'hv_try_never_created' does not exist" in proc.stderr
    assert "createdb" in proc.stderr and "hv_try_never_created" in proc.stderr


def test_the_example_sends_no_email_until_it_is_filled_in(project: Path) -> None:
    """The example's subscription is dry_run: `digest` says how to send; `digest --dry-run`
    previews it; `check --connect` reaches the sources and leaves the made-up SMTP alone."""
    sending = run("digest", cwd=project, env=NO_SECRETS, check=2)
    assert "subscriptions[0].dry_run: this subscription only previews" in sending.stderr
    preview = run("digest", "--dry-run", "--preview-dir", "p", cwd=project, env=NO_SECRETS)
    assert "would send" in preview.stdout
    env = {**NO_SECRETS, "OPENALEX_API_KEY": "emulator-key-7f3a"}
    out = run("check", "--connect", cwd=project, env=env).stdout
    assert "✓ connect pubmed:" in out and "✓ connect medrxiv:" in out
    assert "smtp" not in out and "✗" not in out
