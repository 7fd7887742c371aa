"""Benchmark: a 1,000-study digest rendered and mailed, and split and posted to Slack.

The studies are the 50 real PubMed records of
../shared/fixtures/pubmed/efetch_pubmed_50_records_structured_abstracts.xml, replicated 20 times
with distinct work ids and PMIDs (the copies are synthetic; their text is the real records'),
in two topics of 500. Both servers are the test suite's local ones: aiosmtpd on 127.0.0.1
(tests/smtp_server.py) and the Slack-like webhook (tests/slack_server.py), which checks every
message against Block Kit's limits. Target (issue 6): at most 1 s each.

Run: ``python benchmarks/digest.py [--items 1000]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the servers live in tests/

from harvester.digests.assemble import Digest, DigestItem, DigestSection, rank  # noqa: E402
from harvester.digests.blocks import slack_payloads  # noqa: E402
from harvester.digests.render import render_digest  # noqa: E402
from harvester.digests.view import view_digest  # noqa: E402
from harvester.notifiers import EmailNotifier, SlackNotifier  # noqa: E402
from harvester.query.syntax import parse_query  # noqa: E402
from harvester.records import Record  # noqa: E402
from harvester.sources.pubmed import parse_efetch  # noqa: E402
from tests.slack_server import SlackWebhookServer  # noqa: E402
from tests.smtp_server import LoopbackSMTP  # noqa: E402

FIXTURE = ROOT.parent / "shared/fixtures/pubmed/efetch_pubmed_50_records_structured_abstracts.xml"
TOPICS = {
    "ml-nlp": '("machine learning" OR "deep learning") AND (nlp OR "natural language processing")',
    "ai-care": '"artificial intelligence" OR "machine learning" OR nlp OR learning',
}


def records() -> list[Record]:
    return list(parse_efetch(FIXTURE.read_bytes(), url=FIXTURE.name).records)


def build(n: int) -> tuple[Digest, dict[str, object]]:
    base = records()
    queries = {name: parse_query(text) for name, text in TOPICS.items()}
    per_topic = n // len(queries)
    sections = []
    work_id = 0
    for topic, query in queries.items():
        items: list[DigestItem] = []
        copy = 0
        while len(items) < per_topic:
            for rec in base:
                if len(items) == per_topic:
                    break
                match = query.match(rec)
                if match is None:
                    continue
                work_id += 1
                pmid = f"{rec.source_id}{copy:03d}"  # a distinct (synthetic) id per copy
                clone = rec.with_changes(source_id=pmid, ids=replace(rec.ids, pmid=pmid))
                items.append(
                    DigestItem(work_id, topic, clone, ("pubmed", "crossref"), match.score, match)
                )
            copy += 1
        sections.append(DigestSection(topic, tuple(rank(items))))
    created = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)
    return Digest("benchmark", created, tuple(sections)), dict(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    digest, queries = build(args.items)

    started = time.perf_counter()
    rendered = render_digest(digest, queries=queries, digest_id="bench")  # type: ignore[arg-type]
    render_s = time.perf_counter() - started

    smtp = LoopbackSMTP()
    smtp.start()
    try:
        mailer = EmailNotifier(
            host="127.0.0.1", port=smtp.port, security="none",
            sender="harvester@example.org", to=("team@example.org",),
        )  # fmt: skip
        started = time.perf_counter()
        mailer.send(rendered)
        mail_s = time.perf_counter() - started
        (received,) = smtp.messages
        size = len(received.data)
    finally:
        smtp.stop()

    view = view_digest(digest, queries=queries)  # type: ignore[arg-type]
    started = time.perf_counter()
    payloads = slack_payloads(view)
    split_s = time.perf_counter() - started
    with SlackWebhookServer() as slack, httpx.Client(timeout=10.0) as client:
        poster = SlackNotifier(webhook_url=SecretStr(slack.url), client=client)
        started = time.perf_counter()
        poster.send(rendered)
        post_s = time.perf_counter() - started
        accepted = len(slack.posts)
        refused = [r.reply for r in slack.requests if r.status != 200]

    print(f"studies                       {rendered.count}")
    print(f"render text+HTML+Slack        {render_s:.3f} s  (each item keeps its query Match)")
    print(f"email: render + SMTP accepted {render_s + mail_s:.3f} s  (SMTP {mail_s:.3f} s, "
          f"{size / 1e6:.1f} MB message)")  # fmt: skip
    print(f"slack: split + posted         {split_s + post_s:.3f} s  (split {split_s:.3f} s, "
          f"{accepted} messages accepted, {len(refused)} refused)")  # fmt: skip
    if refused or accepted != len(payloads):
        raise SystemExit(f"Slack server refused messages: {refused}")


if __name__ == "__main__":
    main()
