"""How much of each abstract a digest's HTML can carry: the longest of :data:`EXCERPT_STEPS`
whose HTML fits the email budget, found with one render of the digest and usually one more.

::

    render at the longest excerpt ──▶ fits? done
      └─ else: that size less its abstract lines = the rest; each shorter step's size is the
         rest plus that step's abstract lines (excerpts cut, their lines alone rendered)
         ──▶ render the first step predicted to fit (else the shortest) ──▶ check its size
         against the prediction; should they differ, walk every step as renders would

The prediction is exact, not an estimate: the HTML template puts each abstract paragraph on a
line of its own (the ``abstract_part`` macro, which the template and this module share), and
quoted-printable encodes line by line, so a document's encoded size is the sum of its lines'.
Pure, like render: no store, no network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email import quoprimime

from harvester.digests.assemble import Digest
from harvester.digests.excerpt import AbstractPart
from harvester.digests.view import EXCERPT_CHARS, DigestView, abstract_excerpt, view_digest
from harvester.query.syntax import Query

HTML_LIMIT = 98_000
"""Bytes the HTML part of a digest may take on the wire (quoted-printable, as the email
notifier sends it below 256 KB). Gmail clips a message whose HTML passes about 102 KB and
hides the rest behind a link, so the budget stays under that with room for the part's
headers."""
TOKEN_ROOM = 140
"""Bytes a signed web token may add to a link over its placeholder (quoted-printable)."""
EXCERPT_STEPS = (EXCERPT_CHARS, 1000, 700, 450, 300, 200)
"""Abstract excerpts tried, longest first, until the HTML fits :data:`HTML_LIMIT`."""


def token_room(digest: Digest) -> int:
    """Bytes the signed tokens per recipient may add to the digest's HTML over their
    placeholders: two links a study, one for the digest and one a topic."""
    return TOKEN_ROOM * (2 * len(digest.items) + 1 + len(digest.sections))


@dataclass(frozen=True, slots=True)
class FittedHtml:
    """A digest's HTML at the longest excerpt step that fits (the shortest when none does),
    the view it was rendered from, and its size on the wire."""

    view: DigestView
    html: str
    size: int
    fits: bool
    chars: int


def html_size(html: str) -> int:
    """The HTML's size as the email notifier encodes it (quoted-printable of its UTF-8)."""
    encoded = quoprimime.body_encode(html.encode("utf-8").decode("latin-1"))
    return len(encoded) + encoded.count("\n")  # CRLF line ends on the wire


def fit_html(
    digest: Digest,
    render: Callable[[DigestView], str],
    part_html: Callable[[AbstractPart], str],
    *,
    queries: Mapping[str, Query] | None = None,
    abstracts: bool = True,
    html_limit: int | None = HTML_LIMIT,
) -> FittedHtml:
    """The HTML that rendering ``digest`` at each of :data:`EXCERPT_STEPS` in turn, until one
    fits ``html_limit``, would end with. ``render`` turns a view into the HTML and
    ``part_html`` renders one abstract paragraph as that HTML's template does."""

    def rendered(chars: int) -> FittedHtml:
        view = view_digest(digest, queries=queries, excerpt_chars=chars)
        html = render(view)
        size = html_size(html)
        return FittedHtml(view, html, size, html_limit is None or size <= html_limit, chars)

    first = rendered(EXCERPT_STEPS[0])
    if first.fits or not abstracts or html_limit is None:
        return first
    sizes = _PartSizes(part_html)
    rest = first.size - sizes.total(_view_parts(first.view))
    chars = EXCERPT_STEPS[-1]
    for step in EXCERPT_STEPS[1:-1]:
        if rest + sizes.total(_step_parts(digest, queries, step)) <= html_limit:
            chars = step
            break
    chosen = rendered(chars)
    if chosen.size == rest + sizes.total(_view_parts(chosen.view)):
        return chosen
    # the sizes do not add up (a template whose abstracts share lines with other markup):
    # only rendering every step tells which fits
    for step in EXCERPT_STEPS[1:]:
        chosen = rendered(step)
        if chosen.fits:
            break
    return chosen


def _view_parts(view: DigestView) -> Iterable[tuple[AbstractPart, ...]]:
    return (item.abstract for section in view.sections for item in section.items)


def _step_parts(
    digest: Digest, queries: Mapping[str, Query] | None, chars: int
) -> Iterable[tuple[AbstractPart, ...]]:
    """Each study's excerpt at ``chars``, as view_digest would cut it, without the rest of
    the view (titles, citations, reasons), which no step changes."""
    for section in digest.sections:
        query = (queries or {}).get(section.topic)
        for item in section.items:
            yield abstract_excerpt(item, query, chars)[0]


class _PartSizes:
    """The encoded size of abstract paragraphs' lines, summed. A paragraph an excerpt keeps
    whole is the same at several steps (the first sections of a structured abstract, a short
    abstract), so each distinct one is rendered and encoded once. Each line ends in a newline
    and quoted-printable encodes line by line: the sizes add up to the document's."""

    def __init__(self, part_html: Callable[[AbstractPart], str]) -> None:
        self._html = part_html
        self._sizes: dict[AbstractPart, int] = {}

    def total(self, excerpts: Iterable[tuple[AbstractPart, ...]]) -> int:
        total = 0
        for excerpt in excerpts:
            for part in excerpt:
                size = self._sizes.get(part)
                if size is None:
                    size = self._sizes[part] = html_size(f"{self._html(part)}\n")
                total += size
        return total


__all__ = [
    "EXCERPT_STEPS",
    "HTML_LIMIT",
    "TOKEN_ROOM",
    "FittedHtml",
    "fit_html",
    "html_size",
    "token_room",
]
