"""The abstract excerpt a digest's HTML carries (digests/fit.py): the longest of EXCERPT_STEPS
that fits the email budget, told from the sizes of one render and the excerpts' own lines,
which must pick exactly the step and the HTML that rendering every step in turn picks.

The digests are the real PubMed records of
../shared/fixtures/pubmed/efetch_pubmed_50_records_structured_abstracts.xml (tests/test_render's
real_digest), replicated with distinct work ids where a test needs a large digest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from harvester.digests import render
from harvester.digests.assemble import Digest
from harvester.digests.fit import EXCERPT_STEPS, fit_html, html_size, token_room
from harvester.digests.render import fitted_html, render_digest, render_html
from harvester.digests.view import DigestView, view_digest
from harvester.query.syntax import Query
from tests.test_render import real_digest

WEB = "https://harvester.example.org"


def every_step(
    digest: Digest, queries: Mapping[str, Query], web: str | None
) -> list[tuple[int, str, int]]:
    """Each step's excerpt length, HTML and size, rendered one by one."""
    refs = {(i.topic, i.work_id): n for n, i in enumerate(digest.items)}
    steps = []
    for chars in EXCERPT_STEPS:
        view = view_digest(digest, queries=queries, excerpt_chars=chars)
        html = render_html(view, web=web, refs=refs)
        steps.append((chars, html, html_size(html)))
    return steps


def walk(
    steps: list[tuple[int, str, int]], digest: Digest, limit: int, web: str | None
) -> tuple[int, str, bool]:
    """What render_digest did before it predicted: each step, longest first, until one fits
    (the step, its HTML, whether it fits)."""
    if web:
        limit -= token_room(digest)
    for chars, html, size in steps:
        if size <= limit:
            return chars, html, True
    return chars, html, False


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[DigestView]]:
    """Every view render_html is called with while the test runs."""
    seen: list[DigestView] = []
    real = render.render_html

    def counting(view: DigestView, **kwargs: object) -> str:
        seen.append(view)
        return real(view, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "render_html", counting)
    yield seen


@pytest.mark.parametrize(("copies", "web"), [(1, None), (1, WEB), (3, None)])
def test_the_predicted_step_is_the_one_a_walk_over_every_step_picks(
    copies: int, web: str | None, renders: list[DigestView]
) -> None:
    """Limits on either side of every step's exact size, so each step is the answer once
    (and no step, below the shortest): the same step and the same HTML as the walk, from at
    most two renders."""
    digest, queries = real_digest(copies=copies)
    steps = every_step(digest, queries, web)
    sizes = [size for _chars, _html, size in steps]
    room = token_room(digest) if web else 0
    limits = sorted({s + room + d for s in sizes for d in (-1, 0)} | {sizes[-1] // 2})
    chosen = set()
    for limit in limits:
        want_chars, want_html, want_fits = walk(steps, digest, limit, web)
        renders.clear()
        got = fitted_html(digest, queries=queries, html_limit=limit, web=web)
        assert (got.chars, got.fits) == (want_chars, want_fits), limit
        assert got.html == want_html
        assert got.size == html_size(want_html)
        assert len(renders) <= 2
        chosen.add((got.chars, got.fits))
    # every step was the answer for some limit, and so was "none fits"
    assert {c for c, fits in chosen if fits} == set(EXCERPT_STEPS)
    assert (EXCERPT_STEPS[-1], False) in chosen


def test_a_digest_far_over_the_budget_renders_its_html_twice(renders: list[DigestView]) -> None:
    """The longest step, then straight to the shortest (before: all six), and render_digest's
    text and Slack parts carry the same shortest excerpts as its HTML."""
    digest, queries = real_digest(copies=5)
    rendered = render_digest(digest, queries=queries, digest_id="far")
    assert len(renders) == 2
    assert not rendered.html_fits
    shortest = view_digest(digest, queries=queries, excerpt_chars=EXCERPT_STEPS[-1])
    assert renders[-1] == shortest
    assert rendered.html == render_html(shortest, refs=render._refs(digest))


def test_a_small_digest_renders_once(renders: list[DigestView]) -> None:
    digest, queries = real_digest(max_items=5)
    rendered = render_digest(digest, queries=queries, digest_id="small")
    assert rendered.html_fits
    assert len(renders) == 1
    assert renders[0] == view_digest(digest, queries=queries)


def test_sizes_that_do_not_add_up_fall_back_to_rendering_every_step() -> None:
    """A part renderer unlike the template's (here: every paragraph empty) makes every
    prediction wrong; the check against the rendered size catches it and every step is
    rendered in turn, so the answer is still the walk's."""
    digest, queries = real_digest(copies=3)
    steps = every_step(digest, queries, None)
    sizes = [size for _chars, _html, size in steps]
    seen: list[int] = []

    def html(view: DigestView) -> str:
        seen.append(1)
        return render_html(view)

    for limit in (sizes[2], sizes[4] - 1):
        seen.clear()
        got = fit_html(digest, html, lambda _part: "", queries=queries, html_limit=limit)
        want_chars, want_html, want_fits = walk(steps, digest, limit, None)
        assert (got.chars, got.html, got.fits) == (want_chars, want_html, want_fits)
        assert len(seen) > 2
