"""The shared HTTP layer: polite client, per-host pacing, retries, redaction."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from harvester import __version__
from harvester.app import App, build_app
from harvester.config import parse_settings
from harvester.errors import FetchError, Interrupted, RateLimited
from harvester.harvesting.harvest import HarvestResult, Prefetch
from harvester.http.fetcher import Fetcher, redact_url, retry_after_seconds
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import build_client
from harvester.notifiers.base import ChannelError
from harvester.notifiers.slack import SlackNotifier
from harvester.sources.base import Page
from tests.conftest import FIXTURES, Sleeps
from tests.emulator import Emulator
from tests.hostile_server import HostileServer, gzip_bomb
from tests.test_cli import harvester_command

URL = "https://api.example.org/search"
SECRET = "s3cr3t-k3y"
Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``answers`` in turn (raising the exceptions), and its requests."""
    seen: list[httpx.Request] = []
    pending = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def fetcher_for(
    handler: Handler,
    sleeps: Sleeps,
    *,
    max_attempts: int = 5,
    backoff_base: float = 1.0,
    backoff_max: float = 60.0,
) -> Fetcher:
    client = build_client(contact="tests@example.org", transport=httpx.MockTransport(handler))
    return Fetcher(
        client,
        RateLimiter(),
        sleep=sleeps,
        max_attempts=max_attempts,
        backoff_base=backoff_base,
        backoff_max=backoff_max,
        rng=random.Random(7),
    )


# --- the client ---------------------------------------------------------------------------


def test_client_identifies_harvester_and_follows_no_redirect_itself() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/new"})
        return httpx.Response(200, text=request.headers["User-Agent"])

    with build_client(contact="me@example.org", transport=httpx.MockTransport(handler)) as c:
        assert c.get("https://api.example.org/old").status_code == 301  # the Fetcher decides
        response = c.get("https://api.example.org/new")
        assert c.timeout.read == 30.0
    assert response.text == (
        f"harvester/{__version__} (+https://github.com/harvester-project/harvester;"
        " mailto:me@example.org)"
    )
    anonymous = build_client(contact=None, timeout=5)
    assert anonymous.headers["User-Agent"].endswith("harvester)")
    assert anonymous.timeout.connect == 5
    anonymous.close()


def test_redact_url_hides_secret_parameters_and_passwords() -> None:
    url = f"https://user:pw@x.org/a?term=cancer&API_KEY={SECRET}&token=t&tool=harvester"
    assert redact_url(url) == (
        "https://user:REDACTED@x.org/a?term=cancer&API_KEY=REDACTED&token=REDACTED&tool=harvester"
    )
    assert redact_url("https://x.org/a?q=a%20b") == "https://x.org/a?q=a%20b"
    assert redact_url(f"https://x.org/?mailto=m&sid={SECRET}", frozenset({"sid"})).endswith(
        "sid=REDACTED"
    )


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def after(value: str, **headers: str) -> float | None:
        return retry_after_seconds(httpx.Response(429, headers={"Retry-After": value, **headers}))

    assert after("7") == 7.0
    assert after("-3") == 0.0
    assert after("Wed, 21 Oct 2015 07:28:10 GMT", Date="Wed, 21 Oct 2015 07:28:00 GMT") == 10.0
    assert after("soon") is None
    assert retry_after_seconds(httpx.Response(429)) is None


# --- retries ------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(sleeps: Sleeps) -> None:
    handler, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, text="ok")
    )
    fetcher = fetcher_for(handler, sleeps)

    with capture_logs() as logs:
        response = fetcher.get(URL, {"term": "x"})

    assert response.text == "ok"
    assert sleeps == [7.0]
    assert fetcher.requests == len(seen) == 2
    assert logs[0]["event"] == "request retried"
    assert logs[0]["status"] == 429 and logs[0]["attempt"] == 1 and logs[0]["delay"] == 7.0


def test_retry_after_is_capped_by_backoff_max(sleeps: Sleeps) -> None:
    handler, _ = scripted(httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(200))
    fetcher_for(handler, sleeps, backoff_max=20.0).get(URL)
    assert sleeps == [20.0]


def test_5xx_is_retried_with_growing_jittered_backoff(sleeps: Sleeps) -> None:
    handler, _ = scripted(
        httpx.Response(503), httpx.Response(502), httpx.Response(500), httpx.Response(200)
    )
    fetcher_for(handler, sleeps, backoff_base=1.0).get(URL)

    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (1, 2, 4), strict=True))


def test_429_that_never_ends_raises_rate_limited(sleeps: Sleeps) -> None:
    handler, seen = scripted(*(httpx.Response(429, text="slow down") for _ in range(3)))
    fetcher = fetcher_for(handler, sleeps, max_attempts=3)

    with pytest.raises(RateLimited) as raised:
        fetcher.get(URL)

    assert raised.value.status == 429 and "slow down" in str(raised.value)
    assert len(seen) == 3 and len(sleeps) == 2


def test_5xx_that_never_ends_raises_fetch_error(sleeps: Sleeps) -> None:
    handler, _ = scripted(*(httpx.Response(500) for _ in range(2)))
    with pytest.raises(FetchError) as raised:
        fetcher_for(handler, sleeps, max_attempts=2).get(URL)
    assert not isinstance(raised.value, RateLimited)
    assert raised.value.status == 500 and raised.value.url == URL


def test_other_4xx_fails_at_once_with_a_snippet(sleeps: Sleeps) -> None:
    body = '{"error": "Unrecognized or unsupported fields: [unknown]"}' + " padding" * 100
    handler, seen = scripted(httpx.Response(400, text=body))

    with pytest.raises(FetchError) as raised:
        fetcher_for(handler, sleeps).get(URL, {"fields": "unknown"})

    assert len(seen) == 1 and sleeps == []
    assert raised.value.status == 400
    assert "Unrecognized or unsupported fields" in str(raised.value)
    assert len(str(raised.value)) < 400
    assert raised.value.url == URL + "?fields=unknown"


def test_timeouts_and_transport_errors_are_retried(sleeps: Sleeps) -> None:
    handler, seen = scripted(
        httpx.ReadTimeout("timed out"), httpx.ConnectError("refused"), httpx.Response(200)
    )
    assert fetcher_for(handler, sleeps).get(URL).status_code == 200
    assert len(seen) == 3 and len(sleeps) == 2


def test_timeouts_that_never_end_raise_fetch_error_with_the_cause(sleeps: Sleeps) -> None:
    handler, _ = scripted(*(httpx.ReadTimeout("timed out") for _ in range(2)))
    with pytest.raises(FetchError) as raised:
        fetcher_for(handler, sleeps, max_attempts=2).get(URL)
    assert raised.value.status is None
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert "ReadTimeout" in str(raised.value)


def test_secrets_stay_out_of_logs_and_exceptions(sleeps: Sleeps) -> None:
    echo = f"Invalid api_key {SECRET} for https://api.example.org/search?api_key={SECRET}"
    handler, _ = scripted(
        httpx.Response(503),
        httpx.ConnectError(f"failed for key={SECRET}"),
        httpx.Response(403, text=echo),
    )
    fetcher = fetcher_for(handler, sleeps)

    with capture_logs() as logs, pytest.raises(FetchError) as raised:
        fetcher.get(URL, {"term": "x", "api_key": SECRET})

    assert SECRET not in str(raised.value) and SECRET not in repr(logs)
    assert raised.value.url == URL + "?term=x&api_key=REDACTED"
    assert "Invalid api_key REDACTED" in str(raised.value)
    assert [entry["url"] for entry in logs] == [raised.value.url] * 2
    assert fetcher.redact(URL + f"?api_key={SECRET}") == URL + "?api_key=REDACTED"


# --- against the emulator -----------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with build_client(contact="tests@example.org", timeout=2) as c:
        yield c


POLITE = {"db": "pubmed", "tool": "harvester", "email": "tests@example.org"}


@pytest.mark.integration
@pytest.mark.parametrize("how", ["cut", "extend"])
def test_truncated_bodies_are_fetched_again(
    emu: Emulator, client: httpx.Client, sleeps: Sleeps, how: str
) -> None:
    emu.faults.add(source="pubmed", path_suffix="efetch.fcgi", kind="truncate", how=how)  # type: ignore[arg-type]
    fetcher = Fetcher(client, RateLimiter(), sleep=sleeps)

    with capture_logs() as logs:
        response = fetcher.get(emu.base_url("pubmed") + "/efetch.fcgi", {**POLITE, "id": 9997})

    assert response.content.endswith(b"</PubmedArticleSet>")
    assert len(emu.requests) == 2 and len(sleeps) == 1
    assert "RemoteProtocolError" in logs[0]["error"]


@pytest.mark.integration
def test_slow_answers_time_out_and_are_retried(emu: Emulator, sleeps: Sleeps) -> None:
    emu.faults.add(source="pubmed", kind="slow", delay=0.4)
    with build_client(contact=None, timeout=0.1) as impatient:
        fetcher = Fetcher(impatient, RateLimiter(), sleep=sleeps)
        response = fetcher.get(emu.base_url("pubmed") + "/esearch.fcgi", {**POLITE, "term": "x"})
    assert response.status_code == 200 and fetcher.requests == 2


@pytest.mark.integration
def test_requests_are_paced_per_host(emu: Emulator, client: httpx.Client) -> None:
    # The schedule is the limiter's own (deterministic); the one wall-clock check is a
    # lower bound that a loaded machine can only make easier (issue 11.10: the arrivals
    # measured at the server were not).
    limiter = RateLimiter()
    limiter.set_rate("127.0.0.1", 5)
    fetcher = Fetcher(client, limiter, sleep=Sleeps())
    url = emu.base_url("pubmed") + "/efetch.fcgi"
    starts = []
    acquire = limiter.acquire

    def noting(host: str) -> float:
        starts.append(acquire(host))
        return starts[-1]

    limiter.acquire = noting  # type: ignore[method-assign]
    began = time.monotonic()
    for _ in range(4):
        fetcher.get(url, {**POLITE, "id": 9997})
    elapsed = time.monotonic() - began

    assert [r.status for r in emu.requests] == [200] * 4
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx([0.2] * 3, abs=1e-9)
    assert elapsed >= starts[-1] - starts[0]
    assert emu.requests[0].headers["user-agent"].endswith("mailto:tests@example.org)")


@pytest.mark.integration
def test_ncbi_style_429_without_retry_after_backs_off(emu: Emulator, client: httpx.Client) -> None:
    emu.set_rate_limit("pubmed", ncbi=True)
    sleeps = Sleeps()
    fetcher = Fetcher(client, RateLimiter(), sleep=sleeps, max_attempts=2)
    url = emu.base_url("pubmed") + "/efetch.fcgi"

    for _ in range(3):
        fetcher.get(url, {**POLITE, "id": 9997})
    with pytest.raises(RateLimited) as raised:  # the sleeps were not real: still too fast
        fetcher.get(url, {**POLITE, "id": 9997})

    assert "API rate limit exceeded" in str(raised.value)
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 1.0


# --- the limiter --------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that moves only when slept on (or by hand)."""

    def __init__(self, now: float = 1000.0, *, advance: bool = True) -> None:
        self.now = now
        self.advance = advance
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.advance:
                self.now += seconds


def test_limiter_schedule_against_a_fake_clock() -> None:
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    limiter.set_rate("fast.example.org", 5)

    starts = [limiter.acquire("fast.example.org") for _ in range(4)]
    assert starts == pytest.approx([1000.0, 1000.2, 1000.4, 1000.6])
    assert fake.sleeps == pytest.approx([0.2, 0.2, 0.2])

    fake.now += 10  # idle for a while: the next request starts at once, no burst after it
    assert limiter.acquire("fast.example.org") == pytest.approx(1010.6)
    assert limiter.acquire("fast.example.org") == pytest.approx(1010.8)

    assert limiter.adapt("fast.example.org", 1, 1.0) is True  # lowered: applies from now
    assert limiter.acquire("fast.example.org") == pytest.approx(1011.8)


def test_limiter_is_shared_by_threads() -> None:
    # the clock stands still, so every start is a reservation: two threads sharing a host
    # take consecutive slots, none twice
    fake = FakeTime(advance=False)
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    limiter.set_rate("api.example.org", 40)
    starts: list[float] = []
    lock = threading.Lock()

    def job() -> None:
        for _ in range(3):
            start = limiter.acquire("api.example.org")
            with lock:
                starts.append(start)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(starts) == pytest.approx([1000.0 + i * 0.025 for i in range(6)])
    assert sorted(fake.sleeps) == pytest.approx([i * 0.025 for i in range(1, 6)])


def test_unlimited_hosts_and_fractional_rates() -> None:
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    for _ in range(20):
        limiter.acquire("unlimited.example.org")
    assert fake.sleeps == []
    assert limiter.rate("unlimited.example.org") is None

    limiter.set_rate("export.arxiv.org", 1 / 3)  # arXiv: one request every 3 seconds
    assert limiter.rate("export.arxiv.org") == pytest.approx(1 / 3)
    assert [limiter.acquire("export.arxiv.org") for _ in range(3)] == pytest.approx(
        [1000.0, 1003.0, 1006.0]
    )
    limiter.set_rate("fast.example.org", 2.5)
    first, second = (limiter.acquire("fast.example.org") for _ in range(2))
    assert second - first == pytest.approx(0.4)
    with pytest.raises(ValueError):
        limiter.set_rate("x", 0)


def test_adapt_only_ever_lowers_a_rate() -> None:
    limiter = RateLimiter()
    limiter.set_rate("api.crossref.org", 50)

    assert limiter.adapt("api.crossref.org", 100, 1.0) is False
    assert limiter.rate("api.crossref.org") == 50
    assert limiter.adapt("api.crossref.org", 10, 2.0) is True  # x-rate-limit: 10 per 2s
    assert limiter.rate("api.crossref.org") == 5
    assert limiter.adapt("new.example.org", 3, 1.0) is True
    assert limiter.rate("new.example.org") == 3


def test_in_flight_requests_are_capped_per_api() -> None:
    # Crossref allows one request in flight anonymously: four threads, one at a time
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return httpx.Response(200, json={"status": "ok"})

    limiter = RateLimiter()
    limiter.set_concurrency("api.crossref.org", 1)
    with build_client(contact=None, transport=httpx.MockTransport(handler)) as client:
        fetcher = Fetcher(client, limiter, sleep=Sleeps())
        threads = [
            threading.Thread(target=fetcher.get, args=("https://api.crossref.org/works",))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peak == 1 and fetcher.requests == 4

    limiter.set_concurrency("api.crossref.org", 3)  # the polite pool
    peak = 0
    with build_client(contact=None, transport=httpx.MockTransport(handler)) as client:
        fetcher = Fetcher(client, limiter, sleep=Sleeps())
        threads = [
            threading.Thread(target=fetcher.get, args=("https://api.crossref.org/works",))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert 1 < peak <= 3


# --- hostile servers (tests/hostile_server.py: real sockets on loopback) --------------------

S2_KEY = "s2-k3y-never-elsewhere"
S2_PAGE = "semanticscholar/paper_search_bulk_kubernetes_page3_last_no_token.json"
PUBMED_PAGE = "pubmed/efetch_pubmed_50_records_structured_abstracts.xml"


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[HostileServer]:
    """Another host: 127.0.0.2 is loopback too, but not the host that was asked."""
    with HostileServer("127.0.0.2") as server:
        yield server


def hostile_app(
    tmp_path: Path,
    source: str,
    base_url: str,
    *,
    http: dict[str, object] | None = None,
    table: dict[str, object] | None = None,
) -> App:
    data: dict[str, object] = {
        "database": {"url": f"sqlite:///{tmp_path / 'h.db'}"},
        "sources": {source: {"base_url": base_url, "requests_per_second": 50, **(table or {})}},
        "topics": [{"name": "t", "query": "cancer", "sources": [source], "lookback_days": 3}],
    }
    if http:
        data["http"] = http
    settings = parse_settings(data, path="test.toml")
    return build_app(settings, sleep=Sleeps())


def test_same_host_redirects_are_followed_with_their_headers(sleeps: Sleeps) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/new?page=2"})
        if request.url.scheme == "http":
            return httpx.Response(308, headers={"Location": "https://api.example.org/old"})
        return httpx.Response(200, text="ok")

    fetcher = fetcher_for(handler, sleeps)
    response = fetcher.get("http://api.example.org/start", headers={"x-api-key": SECRET})

    assert response.text == "ok" and str(response.url) == "https://api.example.org/new?page=2"
    assert [r.headers["x-api-key"] for r in seen] == [SECRET] * 3
    assert fetcher.requests == 3


def test_redirect_loops_end(sleeps: Sleeps) -> None:
    handler, _ = scripted(*(httpx.Response(302, headers={"Location": "/again"}) for _ in range(9)))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher_for(handler, sleeps).get(URL)


@pytest.mark.integration
def test_redirect_to_another_host_is_refused_and_the_key_never_arrives(
    hostile: HostileServer,
    elsewhere: HostileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # issue 18.3: the client followed redirects anywhere and re-sent x-api-key
    elsewhere.behave("ok", body=(FIXTURES / S2_PAGE).read_bytes())
    hostile.behave("redirect", status=307, location=f"{elsewhere.url}/graph/v1/paper/search/bulk")
    monkeypatch.setenv("S2_TEST_KEY", S2_KEY)
    app = hostile_app(
        tmp_path, "semanticscholar", hostile.url + "/graph/v1", table={"api_key_env": "S2_TEST_KEY"}
    )
    try:
        with capture_logs() as logs:
            result = app.harvest(app.settings.topics[0], "semanticscholar")
    finally:
        app.close()

    assert elsewhere.seen() == []  # not followed at all: the key cannot have gone there
    assert hostile.seen()[0].headers["x-api-key"] == S2_KEY  # it did go to its own host
    assert result.status == "failed"
    assert result.error is not None
    assert "redirect to another host refused" in result.error and elsewhere.url in result.error
    refused = [e for e in logs if e["event"] == "redirect refused"]
    assert len(refused) == 1 and refused[0]["location"].startswith(elsewhere.url)
    assert S2_KEY not in repr(logs)


@pytest.mark.integration
def test_a_key_echoed_in_an_error_body_is_scrubbed(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 18.12: a 403 quoting the rejected x-api-key reached harvest_runs.error
    hostile.behave("echo", status=403, template='{{"message": "Forbidden: key {x-api-key}"}}')
    monkeypatch.setenv("S2_TEST_KEY", S2_KEY)
    app = hostile_app(
        tmp_path, "semanticscholar", hostile.url, table={"api_key_env": "S2_TEST_KEY"}
    )
    try:
        with capture_logs() as logs:
            result = app.harvest(app.settings.topics[0], "semanticscholar")
        (run,) = app.repo.runs("t", "semanticscholar")
    finally:
        app.close()

    assert result.status == "failed" and result.error is not None
    assert "HTTP 403" in result.error and "Forbidden: key REDACTED" in result.error
    assert S2_KEY not in result.error and S2_KEY not in (run.error or "")
    assert S2_KEY not in repr(logs)


def test_bearer_tokens_are_scrubbed_too(sleeps: Sleeps) -> None:
    handler, _ = scripted(httpx.Response(401, text=f"token {SECRET} expired"))
    with pytest.raises(FetchError) as raised:
        fetcher_for(handler, sleeps).get(URL, headers={"Authorization": f"Bearer {SECRET}"})
    assert SECRET not in str(raised.value) and "token REDACTED expired" in str(raised.value)


def test_one_attempt_is_singular(sleeps: Sleeps) -> None:
    # issue 11.9: "after 1 attempts"
    handler, _ = scripted(httpx.Response(503), httpx.ConnectError("refused"))
    with pytest.raises(FetchError) as raised:
        fetcher_for(handler, sleeps, max_attempts=1).get(URL)
    assert "HTTP 503 after 1 attempt:" in str(raised.value)
    with pytest.raises(FetchError) as raised:
        fetcher_for(handler, sleeps, max_attempts=1).get(URL)
    assert "request failed after 1 attempt:" in str(raised.value)


# --- deadlines ------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["drip", "drip_headers", "tarpit"])
def test_every_request_ends_by_its_deadline(hostile: HostileServer, kind: str) -> None:
    # issue 18.4: timeouts applied per read, so a byte every 0.3 s was never timed out
    hostile.behave(kind, body=b'{"esearchresult": {}}' * 10, interval=0.3)
    with build_client(contact=None, timeout=30, deadline=1.5) as client:
        fetcher = Fetcher(client, RateLimiter(), sleep=Sleeps())
        began = time.monotonic()
        with pytest.raises(FetchError) as raised:
            fetcher.get(hostile.url + "/esearch.fcgi")
        elapsed = time.monotonic() - began

    assert "no complete response within the 1.5 s request deadline" in str(raised.value)
    assert 1.4 <= elapsed < 6
    assert len(hostile.seen()) == 1  # a deadline is not retried


@pytest.mark.integration
def test_harvest_cli_against_a_dripping_server_ends_with_a_clear_error(
    hostile: HostileServer, tmp_path: Path
) -> None:
    esearch = (FIXTURES / "pubmed/esearch_pubmed_retmode_json.json").read_bytes()
    hostile.behave("drip", body=esearch, interval=0.5)
    config = tmp_path / "h.toml"
    config.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "h.db"}"

[http]
request_deadline_seconds = 2

[sources.pubmed]
base_url = "{hostile.url}"
email = "t@example.org"

[[topics]]
name = "t"
query = "cancer"
sources = ["pubmed"]
"""
    )
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    began = time.monotonic()
    proc = subprocess.run(
        [*harvester_command(), "--config", str(config), "harvest"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    elapsed = time.monotonic() - began
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "t × pubmed: failed" in proc.stdout
    assert "no complete response within the 2 s request deadline" in proc.stdout
    assert elapsed < 15  # the process's start-up included


@pytest.mark.integration
def test_a_dripping_slack_webhook_gives_a_channel_error_by_the_deadline(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile.behave("drip", body=b"ok" * 20, interval=0.3)
    monkeypatch.setenv("SLACK_TEST_HOOK", hostile.url + "/services/T000/B000/XXXX")
    settings = parse_settings(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'h.db'}"},
            "http": {"request_deadline_seconds": 1},
            "topics": [{"name": "t", "query": "cancer"}],
            "subscriptions": [
                {"topics": ["t"], "channel": "slack", "webhook_url_env": "SLACK_TEST_HOOK"}
            ],
        },
        path="test.toml",
    )
    app = build_app(settings, sleep=Sleeps())
    try:
        notifier = SlackNotifier.from_settings(
            settings, settings.subscriptions[0], client=app.client, sleep=app.sleep
        )
        began = time.monotonic()
        with pytest.raises(ChannelError) as raised:
            notifier.post({"text": "hello"})
        elapsed = time.monotonic() - began
    finally:
        app.close()
    # each of its attempts ended by the 1 s deadline (it retries timeouts, as before)
    attempts = len(hostile.seen())
    assert attempts == notifier.max_attempts
    assert "DeadlineExceeded" in str(raised.value) and raised.value.retryable
    assert elapsed < attempts * 1 + 5
    assert "XXXX" not in str(raised.value)


# --- stopping -------------------------------------------------------------------------------


def run_in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["retrying", "tarpit"])
def test_a_stop_ends_backoff_and_requests_in_flight(hostile: HostileServer, kind: str) -> None:
    # issue 11.8: a retrying source kept sending requests for 12 s after "stopping"
    if kind == "retrying":
        hostile.behave("ok", status=503, body=b"busy", headers={"Retry-After": "30"})
    else:
        hostile.behave("tarpit")
    stop = threading.Event()
    with build_client(contact=None, timeout=30, deadline=60, stop=stop) as client:
        fetcher = Fetcher(client, RateLimiter(), sleep=stop.wait, stop=stop)
        thread, raised = run_in_thread(lambda: fetcher.get(hostile.url + "/efetch.fcgi"))
        wait_until(lambda: len(hostile.seen()) == 1)
        time.sleep(0.3)  # in its back-off (or its read)
        stopped = time.monotonic()
        stop.set()
        thread.join(timeout=10)
        took = time.monotonic() - stopped

    assert not thread.is_alive() and took < 3
    assert len(raised) == 1 and isinstance(raised[0], Interrupted), raised
    time.sleep(0.3)
    assert len(hostile.seen()) == 1  # no request started after the stop


def test_nothing_is_sent_once_stopped(sleeps: Sleeps) -> None:
    handler, seen = scripted(httpx.Response(200))
    stop = threading.Event()
    stop.set()
    client = build_client(contact=None, transport=httpx.MockTransport(handler), stop=stop)
    with pytest.raises(Interrupted):
        Fetcher(client, RateLimiter(), sleep=sleeps, stop=stop).get(URL)
    with pytest.raises(httpx.TransportError):  # the Slack notifier's path: a TransportError
        client.post(URL, json={"text": "x"})
    assert seen == []


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["tarpit", "retrying", "drip"])
def test_sigterm_stops_a_daemon_within_seconds(
    hostile: HostileServer, tmp_path: Path, kind: str
) -> None:
    if kind == "retrying":
        hostile.behave("ok", status=503, body=b"busy", headers={"Retry-After": "30"})
    elif kind == "drip":
        hostile.behave("drip", body=b"{}" * 1000, interval=0.5)
    else:
        hostile.behave("tarpit")
    config = tmp_path / "h.toml"
    config.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "h.db"}"

[sources.pubmed]
base_url = "{hostile.url}"
email = "t@example.org"

[[topics]]
name = "t"
query = "cancer"
sources = ["pubmed"]
schedule = "every 1h"

[daemon]
jitter_seconds = 0
"""
    )
    env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [*harvester_command(), "--config", str(config), "--log-format", "json", "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until(lambda: len(hostile.seen()) >= 1, timeout=60)
        time.sleep(0.5)  # in its back-off, its drip or its tarpit
        before = len(hostile.seen())
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert took < 8, text[-3000:]
    assert len(hostile.seen()) == before  # nothing new was sent after "stopping"
    assert '"harvest interrupted"' in text and '"daemon stopped"' in text
    settings = parse_settings({"database": {"url": f"sqlite:///{tmp_path / 'h.db'}"}})
    app = build_app(settings)
    try:
        assert [r.status for r in app.repo.runs("t", "pubmed")] == ["interrupted"]
    finally:
        app.close()


# --- size caps ------------------------------------------------------------------------------


def peak_bytes(call: Callable[[], object]) -> tuple[int, BaseException | None]:
    """The peak of Python allocations while ``call`` runs, and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        call()
    except BaseException as e:
        raised = e
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


@pytest.mark.integration
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_is_refused_without_being_read(
    hostile: HostileServer, chunked: bool
) -> None:
    # issue 18.5: a 200 MB response was accepted (8.25 GB peak RSS); the body is a real
    # recorded efetch page repeated, streamed on the fly by the server
    unit = (FIXTURES / PUBMED_PAGE).read_bytes()
    hostile.behave("big", size=24 * 1024 * 1024, unit=unit, chunked=chunked)
    with build_client(contact=None) as client:
        fetcher = Fetcher(client, RateLimiter(), sleep=Sleeps(), max_response_bytes=2_000_000)
        url = hostile.url + f"/efetch.fcgi?api_key={SECRET}"
        with capture_logs() as logs:
            peak, raised = peak_bytes(lambda: fetcher.get(url))

    assert isinstance(raised, FetchError), raised
    assert "response larger than the 2,000,000 byte limit" in str(raised)
    assert raised.url == hostile.url + "/efetch.fcgi?api_key=REDACTED"
    assert len(hostile.seen()) == 1  # not retried
    assert peak < 12_000_000, peak  # the cap and a few slices, never the 24 MB
    assert [e["event"] for e in logs] == ["response refused"]


@pytest.mark.integration
def test_a_gzip_bomb_is_refused_as_it_inflates(hostile: HostileServer) -> None:
    # issue 18.5: 1 MB on the wire reached 4.27 GB before the page was refused; here
    # ~200 KB on the wire inflate to 200 MB, and the cap counts decoded bytes
    gzip_bomb(200 * 1024 * 1024)  # compressed before the measurement
    hostile.behave("gzip_bomb", inflated=200 * 1024 * 1024)
    with build_client(contact=None) as client:
        fetcher = Fetcher(client, RateLimiter(), sleep=Sleeps(), max_response_bytes=4_000_000)
        peak, raised = peak_bytes(lambda: fetcher.get(hostile.url + "/works"))

    assert isinstance(raised, FetchError), raised
    assert "response larger than the 4,000,000 byte limit" in str(raised)
    assert peak < 16_000_000, peak  # the cap, one slice inflated, the decoder state


def test_a_body_within_the_cap_is_decoded_once(sleeps: Sleeps) -> None:
    body = (FIXTURES / S2_PAGE).read_bytes()
    handler, _ = scripted(
        httpx.Response(200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    )
    response = fetcher_for(handler, sleeps).get(URL)
    assert response.content == body and response.json() == json.loads(body)
    assert "content-encoding" not in response.headers


@pytest.mark.integration
def test_a_source_has_its_own_cap(hostile: HostileServer, tmp_path: Path) -> None:
    unit = (FIXTURES / PUBMED_PAGE).read_bytes()
    hostile.behave("big", size=3 * 1024 * 1024, unit=unit)
    app = hostile_app(tmp_path, "pubmed", hostile.url, table={"max_response_bytes": 1_000_000})
    try:
        result = app.harvest(app.settings.topics[0], "pubmed")
    finally:
        app.close()
    assert result.status == "failed" and result.error is not None
    assert "larger than the 1,000,000 byte limit" in result.error
    assert result.counts.requests == 1


# --- requests counted per run ---------------------------------------------------------------


@pytest.mark.integration
def test_each_run_counts_its_own_requests_while_others_run(emu: Emulator, tmp_path: Path) -> None:
    # issue 11.8: five attempts each, but the runs said 14, 19, 21, 22, 25 (one counter)
    names = ("pubmed", "europepmc", "crossref", "semanticscholar")
    for name in names:
        emu.faults.add(source=name, kind="status", status=503, times=2)
    tables: dict[str, dict[str, object]] = {
        name: {"base_url": emu.base_url(name), "requests_per_second": 50, "page_size": 5}
        for name in names
    }
    tables["pubmed"]["email"] = "t@example.org"
    settings = parse_settings(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'h.db'}"},
            "sources": tables,
            "topics": [
                {
                    "name": "t",
                    "query": "cancer* OR model*",
                    "sources": list(names),
                    "lookback_days": 20000,
                }
            ],
        },  # fmt: skip
        path="test.toml",
    )
    app = build_app(settings, sleep=Sleeps())
    topic = app.settings.topics[0]
    for name in names:
        app.source(name)  # built before the threads, as the daemon's first jobs would
    results: dict[str, HarvestResult] = {}

    def harvest(name: str) -> None:
        results[name] = app.harvest(topic, name)

    try:
        threads = [threading.Thread(target=harvest, args=(name,)) for name in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        app.close()

    seen = {name: sum(1 for r in emu.requests if r.source == name) for name in names}
    assert {n: r.counts.requests for n, r in results.items()} == seen
    assert all(count >= 3 for count in seen.values()), seen  # two 503s and a page at least


# --- the harvest's prefetch -----------------------------------------------------------------


def test_prefetch_waits_end_on_a_stop_and_close_is_bounded() -> None:
    # a source stuck in a request that ignores the stop: the consumer still ends promptly
    release = threading.Event()
    stop = threading.Event()

    def stuck() -> Iterator[Page]:
        yield Page(source="pubmed", url="u", body=b"<x/>")
        release.wait(30)

    pages = Prefetch(stuck(), should_stop=stop.is_set, join_timeout=0.5)
    got: list[Page] = []
    thread, raised = run_in_thread(lambda: got.extend(pages))
    wait_until(lambda: len(got) == 1)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], Interrupted)

    began = time.monotonic()
    with capture_logs() as logs:
        pages.close()
    assert time.monotonic() - began < 3
    assert [e["event"] for e in logs] == ["prefetch left running"]
    release.set()
