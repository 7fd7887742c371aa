"""Rendering digests (text, HTML, Slack Block Kit) from the real PubMed records in
../shared/fixtures/pubmed (efetch_pubmed_50_records_structured_abstracts.xml: 50 records of a
"machine learning"/NLP search, 22 with structured abstracts).

Where a test needs what no recording has (a title carrying ``<script>`` and a line break, a
``javascript:`` URL, a 300-study digest) it edits or replicates a real record and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from harvester.digests.assemble import Digest, DigestItem, DigestSection, rank
from harvester.digests.blocks import MAX_BLOCKS, SECTION_TEXT, escape, link, slack_payloads
from harvester.digests.render import (
    digest_key,
    one_line,
    render_digest,
    subject_line,
    write_preview,
)
from harvester.digests.view import highlight, view_digest
from harvester.query.syntax import Query, parse_query
from harvester.records import Record
from harvester.sources.pubmed import parse_efetch
from tests.conftest import require_shared
from tests.slack_server import check_payload

TOPIC = "ml-nlp"
QUERY = '("machine learning" OR "deep learning") AND (nlp OR "natural language processing")'
CREATED = datetime(2025, 1, 15, 7, 0, tzinfo=UTC)
STRUCTURED = "35225694"  # "Can Natural Language Processing …": 5 labelled abstract sections
REVIEW = "35908207"  # a systematic review: the "review" badge


@cache
def _parsed() -> tuple[Record, ...]:
    path = require_shared() / "pubmed" / "efetch_pubmed_50_records_structured_abstracts.xml"
    return tuple(parse_efetch(path.read_bytes(), url=path.name).records)


def pubmed_records() -> list[Record]:
    return list(_parsed())


def record(pmid: str) -> Record:
    return next(r for r in pubmed_records() if r.source_id == pmid)


def hostile(base: Record) -> Record:
    """A real record whose title was edited to carry markup and a header-injection attempt,
    and whose URL was made a javascript: link (no API sent these; they test the escaping)."""
    return base.with_changes(
        title=f"<script>alert('x')</script> {base.title}\r\nBcc: victim@example.org",
        url="javascript:alert(1)",
        ids=replace(base.ids, doi=None, pmid=None),
    )


def real_digest(
    records: list[Record] | None = None,
    *,
    query: Query | None = None,
    copies: int = 1,
    subscription: str = "team",
    max_items: int | None = None,
) -> tuple[Digest, dict[str, Query]]:
    """A digest of the matching fixture records, ranked like assemble_digest ranks them.
    ``copies`` > 1 replicates the real records with distinct work ids (for scale)."""
    query = query or parse_query(QUERY)
    items = []
    for copy in range(copies):
        for n, rec in enumerate(records if records is not None else pubmed_records()):
            match = query.match(rec)
            if match is None:
                continue
            items.append(
                DigestItem(copy * 1000 + n, TOPIC, rec, ("pubmed", "crossref"), match.score)
            )
    ranked = rank(items)
    shown = ranked if max_items is None else ranked[:max_items]
    section = DigestSection(TOPIC, tuple(shown), len(ranked) - len(shown))
    return Digest(subscription, CREATED, (section,)), {TOPIC: query}


# --- plain text --------------------------------------------------------------------------------


def test_text_lists_each_study_with_citation_links_sources_why_and_abstract_headings() -> None:
    digest, queries = real_digest([record(STRUCTURED), record(REVIEW)])
    text = render_digest(digest, queries=queries).text
    assert text.startswith("ml-nlp: 2 new studies\n")
    assert "Can Natural Language Processing and Artificial Intelligence Automate" in text
    assert "    Kim JS, Vivas A, Arvind V, et al.\n" in text
    assert "    Global spine journal · 2023 · 13(7) · pp 1946-1955\n" in text
    assert "    https://doi.org/10.1177/21925682211062831\n" in text
    assert "    found in PubMed · Crossref\n" in text
    assert '\n    why: "machine learning" in abstract' in text
    flat = " ".join(text.split())  # the why line is wrapped like the abstract
    assert '· "natural language processing" in title, abstract, MeSH/keywords' in flat
    for heading in ("STUDY DESIGN:", "OBJECTIVES:", "METHODS:", "RESULTS:", "CONCLUSIONS:"):
        assert f"    {heading} " in text
    assert "[review]" in text


def test_items_keep_the_ranked_order_title_matches_first() -> None:
    digest, queries = real_digest(max_items=10)
    rendered = render_digest(digest, queries=queries)
    titles = [i.record.title or "" for i in digest.items]
    positions = [rendered.text.index(t) for t in titles]
    assert positions == sorted(positions)
    urls = [i.url for i in view_digest(digest, queries=queries).sections[0].items]
    html_positions = [rendered.html.index(f'<a href="{u}"') for u in urls]
    assert html_positions == sorted(html_positions)
    scores = [i.score for i in digest.items]
    assert scores == sorted(scores, reverse=True)


# --- HTML --------------------------------------------------------------------------------------


def test_html_links_the_title_to_the_doi_and_highlights_matched_words() -> None:
    digest, queries = real_digest([record(STRUCTURED)])
    html = render_digest(digest, queries=queries).html
    assert '<a href="https://doi.org/10.1177/21925682211062831"' in html
    mark = '<mark style="background:#ff9">'
    assert f"Can {mark}Natural Language Processing</mark> and Artificial" in html
    assert f"({mark}NLP</mark>)" in html  # in the abstract
    assert '<b style="font-size:12px">METHODS</b>' in html
    assert "<b>nlp</b> in abstract" in html
    assert "<style" not in html  # mail clients drop style sheets: all CSS is inline


def test_html_escapes_record_text_and_refuses_javascript_links() -> None:
    digest, queries = real_digest([hostile(record(STRUCTURED))])
    html = render_digest(digest, queries=queries).html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "javascript:" not in html


def test_review_badge_and_abstract_excerpt_is_cut_at_a_word() -> None:
    digest, queries = real_digest([record(REVIEW)])
    view = view_digest(digest, queries=queries, excerpt_chars=300)
    (item,) = view.sections[0].items
    assert item.badges == ("review",)
    assert item.truncated
    assert sum(len(p.text) for p in item.abstract) <= 302
    assert item.abstract[-1].text.endswith(" …")
    assert item.abstract[0].label is not None


def test_published_in_note_is_rendered_when_a_digest_item_carries_it() -> None:
    @dataclass(frozen=True, slots=True)
    class LaterItem(DigestItem):  # the field the lead may add to DigestItem
        published_in: str | None = None

    base = record(STRUCTURED)
    item = LaterItem(1, TOPIC, base, ("biorxiv",), 5.0, published_in="Global spine journal")
    digest = Digest("team", CREATED, (DigestSection(TOPIC, (item,)),))
    rendered = render_digest(digest, queries={TOPIC: parse_query(QUERY)})
    assert "    now published in Global spine journal\n" in rendered.text
    assert "now published in Global spine journal</div>" in rendered.html
    assert any(
        "now published in Global spine journal" in e["text"]
        for p in rendered.slack
        for b in p["blocks"]
        for e in b.get("elements", ())
    )


def test_a_work_with_other_versions_says_also_published_as_in_every_format() -> None:
    from harvester.digests.assemble import assemble_digest
    from harvester.records import StoredWork
    from tests.test_store import dataset_record

    # colrev_special_cases id_0000010, the 2014 journal article, and its other versions: the
    # 2011 conference paper (id_0000009) and a preprint derived from the article (a bioRxiv
    # DOI, no journal details), as Repository.versions gives them, main version first
    journal = dataset_record("colrev_special_cases", "id_0000010", "crossref")
    conference = dataset_record("colrev_special_cases", "id_0000009", "crossref")
    preprint = journal.with_changes(
        source="biorxiv", ids=journal.ids.__class__(doi="10.1101/2013.01.01.000001"),
        venue=None, volume=None, issue=None, pages=None, type="preprint", year=2013,
    )  # fmt: skip
    query = parse_query('"virtual expertise"')
    works = [StoredWork(7, journal, ("crossref",), topic=TOPIC)]
    digest = assemble_digest(
        "team", works, queries={TOPIC: query}, now=CREATED, versions={7: (conference, preprint)}
    )
    line = (
        "also published as Symposium on Dependable Autonomic and Secure Computing (2011); "
        "a preprint (2013)"
    )
    rendered = render_digest(digest, queries={TOPIC: query})
    assert f"    {line}\n" in rendered.text
    assert f"{line}</div>" in rendered.html
    assert any(
        line in e["text"]
        for p in rendered.slack
        for b in p["blocks"]
        for e in b.get("elements", ())
    )
    # a work without other versions says nothing of the kind
    alone = assemble_digest("team", works, queries={TOPIC: query}, now=CREATED)
    assert "also published as" not in render_digest(alone, queries={TOPIC: query}).text


def test_highlight_marks_whole_words_only_and_keeps_the_text() -> None:
    segments = highlight("NLP and nlpx, not NLPs; nlp.", ["NLP"])
    assert "".join(s.text for s in segments) == "NLP and nlpx, not NLPs; nlp."
    assert [s.text for s in segments if s.hit] == ["NLP", "nlp"]


def test_truncated_terms_list_the_words_they_matched() -> None:
    query = parse_query("learn* AND (nlp OR language)")
    digest, queries = real_digest([record(STRUCTURED)], query=query)
    (item,) = view_digest(digest, queries=queries).sections[0].items
    (reason,) = [r for r in item.reasons if r.term == "learn*"]
    assert "learning" in reason.forms
    assert reason.fields[0] == "abstract"


# --- subject and identity ----------------------------------------------------------------------


def test_subject_counts_studies_and_a_lone_study_names_its_title_on_one_line() -> None:
    digest, queries = real_digest(max_items=12)
    assert render_digest(digest, queries=queries).subject == (
        "harvester: 12 new studies (38 more waiting) — ml-nlp"
    )
    digest, queries = real_digest([hostile(record(STRUCTURED))])
    subject = render_digest(digest, queries=queries).subject
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("harvester: 1 new study — ml-nlp: <script>alert('x')</script> Can")
    assert subject.endswith("…")
    empty = Digest("team", CREATED, (DigestSection(TOPIC, ()),))
    assert subject_line(view_digest(empty)) == "harvester: nothing new — ml-nlp"


def test_one_line_removes_line_breaks_and_control_characters() -> None:
    assert one_line("a\r\nBcc: x\u2028y\x00z\tq") == "a Bcc: x y z q"


def test_digest_key_is_stable_per_deployment_digest_and_contents() -> None:
    digest, queries = real_digest(max_items=3)
    first = render_digest(digest, queries=queries, digest_id=41, deployment="db-a")
    again = render_digest(digest, queries=queries, digest_id=41, deployment="db-a")
    other = render_digest(digest, queries=queries, digest_id=42, deployment="db-a")
    items = [(i.topic, i.work_id) for i in digest.items]
    assert first.key == again.key == digest_key("team", "41", deployment="db-a", items=items)
    assert other.key != first.key
    assert first.work_ids == tuple(i.work_id for i in digest.items)
    # digest 41 of another database, or with other studies, is another message
    elsewhere = render_digest(digest, queries=queries, digest_id=41, deployment="db-b")
    fewer, _ = real_digest(max_items=2)
    changed = render_digest(fewer, queries=queries, digest_id=41, deployment="db-a")
    assert len({first.key, elsewhere.key, changed.key}) == 3


# --- Slack Block Kit ---------------------------------------------------------------------------


def test_slack_escapes_record_text_and_links_titles() -> None:
    digest, queries = real_digest([hostile(record(STRUCTURED)), record(REVIEW)])
    (payload,) = render_digest(digest, queries=queries).slack
    texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert texts[0].startswith("*&lt;script&gt;alert('x')&lt;/script&gt; Can Natural")
    assert "javascript:" not in json.dumps(payload)
    assert texts[1].startswith("*<https://doi.org/10.1111/jocn.16478|Artificial intelligence")
    assert "`review`" in texts[1]
    assert check_payload(payload) is None


def test_slack_link_and_escape_follow_slack_formatting_rules() -> None:
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert link("https://x.org/a|b>c", "T<i>") == "<https://x.org/a%7Cb%3Ec|T&lt;i&gt;>"


def test_a_large_digest_is_split_within_slack_limits_keeping_every_study_once() -> None:
    # 300+ studies: the 50 real records' matches replicated with distinct work ids
    digest, queries = real_digest(copies=7)
    view = view_digest(digest, queries=queries)
    payloads = slack_payloads(view)
    assert len(payloads) > 5
    seen: list[str] = []
    for k, payload in enumerate(payloads, start=1):
        assert check_payload(payload) is None
        assert len(payload["blocks"]) <= MAX_BLOCKS
        assert payload["text"].endswith(f"(part {k} of {len(payloads)})")
        for block in payload["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= SECTION_TEXT
                seen.append(block["text"]["text"].split("\n", 1)[0])
    expected = [slack_payloads(view_digest(Digest("t", CREATED, (DigestSection(TOPIC, (i,)),)),
                                           queries=queries))[0]["blocks"][3]["text"]["text"]
                .split("\n", 1)[0] for i in digest.items]  # fmt: skip
    assert seen == expected


def test_slack_section_text_is_capped_even_for_a_huge_abstract() -> None:
    # a real structured abstract with each section repeated 20 times (longer than any API sends)
    base = record(STRUCTURED)
    big = base.with_changes(
        abstract_sections=tuple(
            replace(s, text=" ".join([s.text] * 20)) for s in base.abstract_sections
        )
    )
    digest, queries = real_digest([big])
    (payload,) = slack_payloads(view_digest(digest, queries=queries, excerpt_chars=50_000))
    assert check_payload(payload) is None


# --- dry run -----------------------------------------------------------------------------------


def test_write_preview_writes_text_html_and_slack_json(tmp_path: Path) -> None:
    digest, queries = real_digest(max_items=5)
    rendered = render_digest(digest, queries=queries, digest_id="7")
    paths = write_preview(rendered, tmp_path / "out")
    assert [p.suffix for p in paths] == [".txt", ".html", ".json"]
    txt, html, slack = (p.read_text(encoding="utf-8") for p in paths)
    assert txt.startswith(f"Subject: {rendered.subject}\n\n")
    assert html == rendered.html
    assert json.loads(slack) == list(rendered.slack)


@pytest.mark.parametrize("abstracts", [True, False])
def test_abstracts_option_controls_every_format(abstracts: bool) -> None:
    digest, queries = real_digest([record(STRUCTURED)])
    rendered = render_digest(digest, queries=queries, abstracts=abstracts)
    assert ("METHODS:" in rendered.text) is abstracts
    assert (">METHODS</b>" in rendered.html) is abstracts
    assert ("*METHODS:*" in rendered.slack_json()) is abstracts


# --- what a reader sees (issue 11.9) -------------------------------------------------------------


BEYOND = "36394797"  # its abstract first says "deep learning" after 1,800 characters


def test_an_article_number_is_not_shown_as_pages() -> None:
    from harvester.digests.assemble import citation_line, pages_label

    path = require_shared() / "pubmed" / "efetch_pubmed_collective_author_mathml.xml"
    (numbered,) = parse_efetch(path.read_bytes()).records  # MedlinePgn 026002
    assert numbered.pages == "026002"
    assert citation_line(numbered).endswith(" · article 026002")
    assert "pp 026002" not in citation_line(numbered)
    # page values as the recorded APIs give them: Crossref "e33693", PubMed "37", "vii-x"
    assert pages_label("e33693") == "article e33693"
    assert pages_label("110671") == "article 110671"
    assert pages_label("37") == "p 37"
    assert pages_label("vii-x") == "pp vii-x"
    assert pages_label("1946-1955") == "pp 1946-1955"


def test_plain_text_underlines_are_as_long_as_their_headings() -> None:
    for max_items in (1, 9, 12, None):
        digest, queries = real_digest(max_items=max_items)
        lines = render_digest(digest, queries=queries).text.splitlines()
        heading, underline = lines[0], lines[1]
        assert heading.startswith("ml-nlp: ")
        assert underline == "=" * len(heading), (heading, underline)


def test_the_citation_separator_is_a_middle_dot_in_every_format() -> None:
    digest, queries = real_digest([record(STRUCTURED)])
    rendered = render_digest(digest, queries=queries)
    for text in (rendered.text, rendered.html, rendered.slack_json()):
        assert "◽" not in text
        assert "Global spine journal · 2023 · 13(7) · pp 1946-1955" in text


def test_a_matched_term_beyond_the_excerpt_is_still_shown() -> None:
    """The "why" line says "deep learning" is in the abstract; the abstract says it only after
    1,800 characters, past the 1,500 of the excerpt: the excerpt ends with the words around it
    (before, the reader was pointed at a term the excerpt had cut off)."""
    digest, queries = real_digest([record(BEYOND)])
    (item,) = view_digest(digest, queries=queries).sections[0].items
    assert any(r.term == '"deep learning"' and "abstract" in r.fields for r in item.reasons)
    hits = [s.text for p in item.abstract for s in p.segments if s.hit]
    assert [h.lower() for h in hits] == ["deep learning"]
    assert item.abstract[-1].label == "CONCLUSION" and item.truncated  # where it is said
    assert sum(len(p.text) for p in item.abstract) < 1500 + 2 * 120 + 40
    rendered = render_digest(digest, queries=queries)
    assert '<mark style="background:#ff9">deep learning</mark>' in rendered.html
    assert "deep learning" in " ".join(rendered.text.split()[-60:])
    section = next(b for b in rendered.slack[0]["blocks"] if b["type"] == "section")
    assert "deep learning" in section["text"]["text"].split("\n>", 1)[1]


def test_slack_parts_hold_the_same_studies_whatever_waits_after_them() -> None:
    """A retry of a partly posted Slack digest skips the parts already posted; if more studies
    arrived meanwhile, the note on what waits grows, and must not move studies between parts."""
    from zoneinfo import ZoneInfo

    from harvester.config.subscriptions import Cadence
    from harvester.digests.assemble import with_backlog

    digest, queries = real_digest(copies=4)

    def studies(d: Digest) -> list[list[str]]:
        return [
            [b["text"]["text"].split("\n", 1)[0] for b in p["blocks"] if b["type"] == "section"]
            for p in slack_payloads(view_digest(d, queries=queries))
        ]

    plain = studies(digest)
    assert len(plain) >= 4
    for waiting in (1, 550, 123_456):
        noted = with_backlog(
            digest,
            {TOPIC: waiting},
            cadence=Cadence.parse("weekly sun 03:00"),
            zone=ZoneInfo("Europe/Vienna"),
            per_digest=50,
            feeds={TOPIC: "https://feeds.example.org/a/very/long/path/" + "x" * 200},
        )
        assert studies(noted) == plain, waiting
