"""The web interface in a real browser: headless Chromium (Debian's) driven by Playwright,
against the app served by uvicorn on loopback, over a database filled by a real harvest from
the emulator; digests received by the loopback SMTP server are opened in the same browser and
their links followed as a reader would.

Screenshots of the dashboard and a topic page are written to docs/ (the README shows them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harvester.app import App
from harvester.digests.delivery import deliver, notifier_for
from harvester.store import readers
from harvester.web.server import create_app
from tests.emulator import Emulator
from tests.smtp_server import LoopbackSMTP
from tests.web_fixtures import (
    ADMIN_ENV,
    ADMIN_PASSWORD,
    READERS,
    SECRET,
    SECRET_ENV,
    free_port,
    serving,
    web_app,
)

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    debian = Path("/usr/bin/chromium")  # Debian's (apt-get install chromium), as .ci/run has it
    chromium = str(debian) if debian.exists() else shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI") == "true":  # .ci/run installs it: missing there is a failure
            pytest.fail("CI=true but no Chromium (apt-get install -y chromium)")
        pytest.skip("no Chromium on this machine (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def served(
    emu: Emulator, database_url: str, smtp: LoopbackSMTP, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, str]]:
    """The app harvested from the emulator and served; its base_url is where it is served."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(ADMIN_ENV, ADMIN_PASSWORD)
    port = free_port()
    app = web_app(emu, database_url, smtp.port, f"http://127.0.0.1:{port}")
    try:
        # nlp only: a test harvests ml (the same records) when it needs them found again
        assert app.harvest(app.settings.topic("nlp"), "pubmed").status == "ok"
        with serving(create_app(app), port) as url:
            yield app, url
    finally:
        app.close()


def send(app: App) -> None:
    sub = app.settings.subscriptions[0]
    deliver(app, sub, notifier_for(app, sub), ignore_backoff=True)


def mail_html(smtp: LoopbackSMTP, to: str, start: int = 0) -> str:
    for received in smtp.messages[start:]:
        mail = received.parsed()
        if mail["To"] == to:
            body = mail.get_body(("html",))
            assert body is not None
            return str(body.get_content())
    raise AssertionError(f"no mail to {to}")


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/admin")
    assert page.url.startswith(f"{url}/login")  # admin pages redirect to the login
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login")
    assert page.url == f"{url}/admin"


def test_admin_pages_redirect_to_login_then_dashboard_and_topic_pages(
    served: tuple[App, str], browser: Any
) -> None:
    app, url = served
    assert app.harvest(app.settings.topic("ml"), "pubmed").status == "ok"
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    for path in ("/", "/t/nlp", "/admin"):
        page.goto(url + path)
        assert page.url.startswith(f"{url}/login"), path
    log_in(page, url)
    page.goto(url + "/")
    headings = [" ".join(h.split()) for h in page.locator("main h3").all_inner_texts()]
    assert [h.split()[0] for h in headings] == ["nlp", "ml"]  # each topic
    total = len(app.repo.works("nlp"))
    assert headings[0].startswith(f"nlp {total} studies")
    rows = page.locator("table.runs tr.status-ok").all_inner_texts()
    assert len(rows) == 2 and all("pubmed" in r and "56" in r for r in rows)  # announced 56
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "web-dashboard.png"), full_page=True)

    page.click("text=nlp")
    assert page.url == f"{url}/t/nlp"
    assert page.inner_text("#total") == str(total)
    page.screenshot(path=str(DOCS / "web-topic.png"), full_page=False)
    seen: list[str] = []
    while True:
        seen += [s.get_attribute("id") or "" for s in page.locator("li.study").all()]
        nxt = page.locator("a[rel=next]")
        if nxt.count() == 0:
            break
        nxt.click()
    assert len(seen) == len(set(seen)) == total  # paged through, every study once
    page.goto(f"{url}/t/nlp")
    page.fill("input[name=q]", "radiology")
    page.click("text=Search")
    found = int(page.inner_text("#total"))
    assert 0 < found < total
    assert all("radiolog" in t.lower() for t in page.locator("li.study").all_inner_texts())


def test_unsubscribe_from_a_received_mail_needs_a_click_and_the_next_digest_skips_them(
    served: tuple[App, str], browser: Any, smtp: LoopbackSMTP
) -> None:
    app, url = served
    send(app)
    html = mail_html(smtp, READERS[0])
    context = browser.new_context()
    page = context.new_page()
    page.set_content(html)  # the mail as a reader's client shows it
    link = page.locator("a", has_text="Unsubscribe")
    href = link.get_attribute("href")
    assert href and href.startswith(f"{url}/u/")
    # a mail scanner's GET alone changes nothing
    assert context.request.get(href).status == 200
    assert readers.unsubscribed(app.repo, "lab") == set()
    link.click()
    page.wait_for_url(href)
    assert "Stop sending the digests of lab" in page.inner_text("main")
    assert readers.unsubscribed(app.repo, "lab") == set()  # opening the page: still nothing
    page.click("#unsubscribe")
    page.wait_for_selector("text=Subscribe again")
    assert "will receive no more digests" in page.inner_text("main")
    assert readers.unsubscribed(app.repo, "lab") == {READERS[0]}

    # the next digest (of the studies that waited: ten a topic per digest) goes to bob only
    assert app.repo.pending("lab", ["nlp", "ml"])
    before = len(smtp.messages)
    send(app)
    later = smtp.messages[before:]
    assert later and all(m.rcpt_tos == (READERS[1],) for m in later)


def test_not_relevant_from_a_digest_leaves_the_study_out_of_the_next_one(
    served: tuple[App, str], browser: Any, smtp: LoopbackSMTP
) -> None:
    app, url = served
    send(app)  # the first ten nlp studies
    html = mail_html(smtp, READERS[0])
    page = browser.new_page()
    page.set_content(html)
    # the first study of the digest: ml finds it too later, and ml's digests would carry it
    first = page.locator("a", has_text="not relevant").first
    href = first.get_attribute("href")
    assert href and href.startswith(f"{url}/f/")
    first.click()
    page.wait_for_url(href)
    assert readers.verdicts(app.repo) == []  # the GET only asks
    page.click("#not-relevant")
    page.wait_for_selector("text=Thank you")
    (verdict,) = readers.verdicts(app.repo)
    assert (verdict.recipient, verdict.topic, verdict.verdict) == (
        READERS[0],
        "nlp",
        "not-relevant",
    )

    # the verdict is shown on the topic page
    log_in(page, url)
    page.goto(f"{url}/t/nlp")
    assert "0 relevant, 1 not relevant" in page.inner_text(f"#w{verdict.work_id}")

    # the next digests of the subscription never carry that study in ml
    assert app.harvest(app.settings.topic("ml"), "pubmed").status == "ok"
    sub = app.settings.subscriptions[0]
    waiting = app.repo.pending(sub.key, ["ml"])
    assert verdict.work_id in {w.id for w in waiting}  # it would have come
    before = len(smtp.messages)
    for _ in range(5):
        send(app)
    from sqlalchemy import select

    from harvester.store.models import DigestItem

    with app.repo._session() as session:
        ml = set(
            session.execute(select(DigestItem.work_id).where(DigestItem.topic == "ml")).scalars()
        )
    assert len(smtp.messages) > before
    assert verdict.work_id not in ml and len(ml) >= 40


def test_a_forged_token_and_a_form_without_csrf_are_refused(
    served: tuple[App, str], browser: Any
) -> None:
    app, url = served
    page = browser.new_page()
    from harvester.web.tokens import Signer

    forged = Signer("not-the-secret", max_age=86400).unsubscribe(READERS[0], "lab")
    response = page.goto(f"{url}/u/{forged}")
    assert response is not None and response.status == 400
    assert "not valid" in page.inner_text("main")
    assert page.locator("form").count() == 0  # no unsubscribe button (nor a logout form)
    response = page.goto(f"{url}/f/{forged}?v=relevant")
    assert response is not None and response.status == 400

    page.goto(f"{url}/login")
    page.evaluate("document.querySelector('input[name=csrf]').remove()")
    page.fill("#password", ADMIN_PASSWORD)
    with page.expect_response(lambda r: r.url.startswith(f"{url}/login")) as posted:
        page.click("#login")
    assert posted.value.status == 403
    assert "not sent by this site" in page.inner_text("main")
    page.goto(f"{url}/admin")
    assert page.url.startswith(f"{url}/login")  # not logged in
    assert readers.unsubscribed(app.repo, "lab") == set()


def test_the_admin_marks_a_study_on_the_topic_page_and_exports_one_page(
    served: tuple[App, str], browser: Any
) -> None:
    app, url = served
    page = browser.new_page()
    log_in(page, url)
    page.goto(f"{url}/t/nlp?page=2")
    study = page.locator("li.study").first
    work = (study.get_attribute("id") or "").removeprefix("w")
    study.locator("button", has_text="not relevant").click()
    page.wait_for_url(f"{url}/t/nlp?q=&sort=newest&page=2#w{work}")
    assert "0 relevant, 1 not relevant" in page.inner_text(f"#w{work}")
    (verdict,) = readers.verdicts(app.repo)
    assert (verdict.recipient, verdict.work_id, verdict.verdict) == (
        "admin",
        int(work),
        "not-relevant",
    )
    # the admin is no reader of the subscription: the verdict leaves nothing out of its digests
    from harvester.digests.delivery import by_feedback

    pending = app.repo.pending("lab", ["nlp", "ml"])
    kept, _relevant = by_feedback(app, app.settings.subscriptions[0], pending)
    assert verdict.work_id in {w.id for w in kept} and len(kept) == len(pending)
    # "this page" exports the ten studies shown
    with page.expect_download() as download:
        page.click("text=RIS >> nth=1")
    text = Path(download.value.path()).read_text()
    assert text.count("ER  -") == 10
    # a verdict form without its CSRF token is refused
    page.goto(f"{url}/t/nlp")
    page.evaluate("document.querySelectorAll('form.verdict input[name=csrf]')[0].remove()")
    with page.expect_response(lambda r: r.url.endswith("/t/nlp/feedback")) as posted:
        page.locator("li.study").first.locator("button", has_text="relevant").first.click()
    assert posted.value.status == 403
    assert len(readers.verdicts(app.repo)) == 1
