"""Slack digests posted to a local server that answers like an incoming webhook
(tests/slack_server.py), built from the real PubMed records of ../shared/fixtures."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import pytest
import structlog
from pydantic import SecretStr

from harvester.config import parse_settings
from harvester.digests.render import RenderedDigest, render_digest
from harvester.errors import ConfigError
from harvester.notifiers import ChannelError, SlackNotifier, notifier_class
from tests.slack_server import SlackWebhookServer
from tests.test_render import STRUCTURED, real_digest, record


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def slack() -> Iterator[SlackWebhookServer]:
    with SlackWebhookServer() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


def notifier(url: str, client: httpx.Client, sleeps: Sleeps, **kwargs: float) -> SlackNotifier:
    return SlackNotifier(webhook_url=SecretStr(url), client=client, sleep=sleeps, **kwargs)  # type: ignore[arg-type]


def small() -> RenderedDigest:
    digest, queries = real_digest(max_items=5)
    return render_digest(digest, queries=queries, digest_id="1")


def large() -> RenderedDigest:
    # the fixture's matching records replicated 4 times with distinct ids: ~200 studies
    digest, queries = real_digest(copies=4)
    return render_digest(digest, queries=queries, digest_id="2")


def test_a_digest_is_posted_as_block_kit(slack: SlackWebhookServer, client: httpx.Client) -> None:
    sleeps = Sleeps()
    message = small()
    notifier(slack.url, client, sleeps).send(message)
    assert slack.posts == list(message.slack)
    (payload,) = slack.posts
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds[:3] == ["context", "header", "context"]
    assert kinds.count("section") == 5
    assert sleeps == []


def test_a_large_digest_arrives_in_order_in_several_accepted_messages(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    message = large()
    assert len(message.slack) > 3
    notifier(slack.url, client, Sleeps()).send(message)
    assert [r.status for r in slack.requests] == [200] * len(message.slack)
    assert slack.posts == list(message.slack)


def test_429_waits_for_retry_after_then_posts(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    sleeps = Sleeps()
    slack.fail_next(429, "rate_limited", retry_after=7)
    notifier(slack.url, client, sleeps).send(small())
    assert sleeps == [7.0]
    assert [r.status for r in slack.requests] == [429, 200]
    assert len(slack.posts) == 1


def test_5xx_is_retried_with_exponential_backoff(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    sleeps = Sleeps()
    slack.fail_next(503, "service unavailable", times=2)
    slack.fail_next(500, "")
    notifier(slack.url, client, sleeps, backoff=0.5).send(small())
    assert sleeps == [0.5, 1.0, 2.0]
    assert [r.status for r in slack.requests] == [503, 503, 500, 200]


def test_persistent_5xx_gives_up_retryable_and_says_how_far_it_got(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    message = large()
    sleeps = Sleeps()
    sender = notifier(slack.url, client, sleeps, max_attempts=3)
    # the first part goes through; then Slack fails for longer than the notifier retries
    slack.fail_next(200, "ok")
    slack.fail_next(502, "bad gateway", times=3)
    with pytest.raises(ChannelError) as caught:
        sender.send(message)
    assert caught.value.retryable is True
    assert caught.value.status == 502
    assert caught.value.parts_sent == 1
    assert sleeps == [1.0, 2.0]
    # the outbox retries later from where it stopped: every part arrives exactly once
    sender.send(message, skip_parts=caught.value.parts_sent)
    assert slack.posts == list(message.slack[1:])
    assert len(slack.requests) == 1 + 3 + len(message.slack) - 1


def test_invalid_blocks_is_permanent_and_never_shows_the_webhook(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    message = small()
    broken = copy.deepcopy(dict(message.slack[0]))
    broken["blocks"] = broken["blocks"] * 11  # a real payload repeated past 50 blocks
    with structlog.testing.capture_logs() as logs, pytest.raises(ChannelError) as caught:
        notifier(slack.url, client, Sleeps()).post(broken)
    assert caught.value.retryable is False
    assert caught.value.status == 400
    assert "invalid_blocks" in str(caught.value)
    assert slack.token not in str(caught.value) and slack.url not in str(caught.value)
    assert slack.token not in repr(logs)
    assert slack.posts == []


def test_a_revoked_webhook_is_permanent(slack: SlackWebhookServer, client: httpx.Client) -> None:
    wrong = slack.url.replace(slack.token, "T0000TEST/B0000TEST/revokedrevokedrevoked")
    with pytest.raises(ChannelError, match="404 no_service") as caught:
        notifier(wrong, client, Sleeps()).send(small())
    assert caught.value.retryable is False
    assert "revokedrevokedrevoked" not in str(caught.value)


def test_an_unreachable_server_is_retried_then_reported_without_the_url(
    client: httpx.Client,
) -> None:
    server = SlackWebhookServer()
    url = server.url
    server.close()  # nothing listens there now
    sleeps = Sleeps()
    with structlog.testing.capture_logs() as logs, pytest.raises(ChannelError) as caught:
        notifier(url, client, sleeps, max_attempts=3).send(small())
    assert caught.value.retryable is True
    assert caught.value.status == "network"
    assert sleeps == [1.0, 2.0]
    assert server.token not in str(caught.value) and server.token not in repr(logs)
    assert caught.value.__cause__ is None  # httpx's error holds the request and its URL


def test_a_retry_after_longer_than_allowed_is_left_to_the_outbox(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    sleeps = Sleeps()
    slack.fail_next(429, "rate_limited", retry_after=3600)
    with pytest.raises(ChannelError, match="rate limited for 3600 s") as caught:
        notifier(slack.url, client, sleeps).send(small())
    assert caught.value.retryable is True
    assert sleeps == []


def test_from_settings_prefers_the_subscription_webhook(
    slack: SlackWebhookServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SLACK_TEAM", slack.url)
    monkeypatch.setenv("TEST_SLACK_DEFAULT", slack.url.replace(slack.token, "T1/B1/otherother"))
    settings = parse_settings(
        {
            "topics": [{"name": "ml-nlp", "query": "nlp"}],
            "subscriptions": [
                {"topics": ["ml-nlp"], "channel": "slack", "webhook_url_env": "TEST_SLACK_TEAM"},
                {"topics": ["ml-nlp"], "channel": "slack"},
            ],
            "channels": {"slack": {"webhook_url_env": "TEST_SLACK_DEFAULT"}},
        }
    )
    team, default = settings.subscriptions
    notifier_class("slack").from_settings(settings, team, client=client, sleep=Sleeps()).send(
        small()
    )
    assert len(slack.posts) == 1
    with pytest.raises(ChannelError, match="no_service"):
        notifier_class("slack").from_settings(settings, default, client=client).send(small())
    with pytest.raises(ValueError, match="httpx client"):
        SlackNotifier.from_settings(settings, team)


def test_from_settings_without_any_webhook_is_a_config_error() -> None:
    settings = parse_settings({"topics": [{"name": "ml-nlp", "query": "nlp"}]})
    subscription = parse_settings(
        {
            "topics": [{"name": "ml-nlp", "query": "nlp"}],
            "subscriptions": [{"topics": ["ml-nlp"], "channel": "email", "to": ["a@b.org"]}],
            "channels": {"email": {}},
        }
    ).subscriptions[0]
    with httpx.Client() as c, pytest.raises(ConfigError, match="no Slack webhook"):
        SlackNotifier.from_settings(settings, subscription, client=c)


def test_record_text_is_escaped_in_what_slack_receives(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    from tests.test_render import hostile

    digest, queries = real_digest([hostile(record(STRUCTURED))])
    notifier(slack.url, client, Sleeps()).send(render_digest(digest, queries=queries))
    (payload,) = slack.posts
    section = next(b for b in payload["blocks"] if b["type"] == "section")
    assert section["text"]["text"].startswith("*&lt;script&gt;alert('x')&lt;/script&gt;")


def test_each_accepted_part_is_reported_as_it_is_accepted(
    slack: SlackWebhookServer, client: httpx.Client
) -> None:
    """The outbox hears of every part as Slack accepts it, not only when a later one fails:
    here the send is cut short after part 2 by something that is not a ChannelError."""
    message = large()
    seen: list[int] = []

    class Interrupted(Exception):
        pass

    def record(parts: int) -> None:
        seen.append(parts)
        if parts == 2:
            raise Interrupted  # the process dies here, say

    with pytest.raises(Interrupted):
        notifier(slack.url, client, Sleeps()).send(message, on_part=record)
    assert seen == [1, 2] and len(slack.posts) == 2
    notifier(slack.url, client, Sleeps()).send(message, skip_parts=seen[-1], on_part=seen.append)
    assert slack.posts == list(message.slack)
    assert seen == list(range(1, len(message.slack) + 1))
