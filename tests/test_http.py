"""The shared HTTP layer: polite client, per-host pacing, retries, redaction."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from structlog.testing import capture_logs

from harvester import __version__
from harvester.errors import FetchError, RateLimited
from harvester.http import (
    Fetcher,
    RateLimiter,
    build_client,
    redact_url,
    retry_after_seconds,
)
from tests.conftest import Sleeps
from tests.emulator import Emulator

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
