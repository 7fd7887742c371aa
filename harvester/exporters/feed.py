"""A topic's stored works as an Atom feed (RFC 4287, written by feedgen)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from harvester.errors import ConfigError
from harvester.records import StoredWork


def atom_feed(
    topic: str, works: Sequence[StoredWork], *, now: datetime, self_url: str | None = None
) -> bytes:
    """An Atom feed (RFC 4287) of a topic's works, newest first (feedgen).

    ``self_url`` is where the feed is published (``harvester feed --self-url``): it becomes the
    feed's rel="self" link, which feed readers use to subscribe; without one the feed has no
    self link (a made-up one would send readers nowhere). Each entry's <published> and
    <updated> are the time harvester first stored the work (when the entry first appeared);
    the work's own publication date is in the entry's summary.
    """
    from feedgen.feed import FeedGenerator

    from harvester.digests.assemble import citation_line, format_authors, record_links

    if self_url is not None and urlsplit(self_url).scheme not in ("http", "https"):
        raise ConfigError(f"the feed's self URL must be an http(s) URL, not {self_url!r}")
    feed = FeedGenerator()
    feed.id(f"tag:harvester,2026:topic:{topic}")
    feed.title(f"harvester: {topic}")
    feed.updated(now)
    # RFC 4287: a feed names an author unless every entry does, and some works have none
    feed.author({"name": "harvester"})
    if self_url is not None:
        feed.link(href=self_url, rel="self", type="application/atom+xml")
    feed.generator("harvester")
    for work in works:  # feedgen prepends: the last added is the first entry
        r = work.record
        entry = feed.add_entry()
        entry.id(f"tag:harvester,2026:work:{work.id}")
        entry.title(r.title or "(untitled)")
        links = record_links(r)
        if links:
            entry.link(href=links[0], rel="alternate")
        seen = work.first_seen or now
        entry.published(seen)
        entry.updated(seen)
        for author in r.authors[:20]:
            entry.author({"name": author.display})
        summary = " — ".join(p for p in (format_authors(r.authors), citation_line(r)) if p)
        if r.abstract:
            summary = f"{summary}\n\n{r.abstract}" if summary else r.abstract
        if not links:  # RFC 4287: an entry without an alternate link must have content
            entry.content(summary or r.title or "(untitled)", type="text")
        elif summary:
            entry.summary(summary)
    data: bytes = feed.atom_str(pretty=True)
    return data


__all__ = ["atom_feed"]
