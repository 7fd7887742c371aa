"""The reading side of the web interface: the dashboard, a topic's pages (search, sort,
pages), its exports, verdicts from a topic page, and one study's page.

Imports the digests' ranking and view (``work_item``, ``view_item``), the exporters, the
web interface's store helpers and :class:`~harvester.web.site.Site`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from harvester.digests.assemble import DigestItem, work_item
from harvester.digests.view import safe_url, view_item
from harvester.records import StoredWork
from harvester.store import readers
from harvester.web.site import FORM_EXPIRED, Site, csrf_ok, login_redirect
from harvester.web.tokens import VERDICTS

log = structlog.get_logger(__name__)

SORTS = ("newest", "relevant")


def routes(site: Site) -> list[Route]:
    """The dashboard, topic, export, topic-feedback and study routes."""
    app, repo, web = site.app, site.app.repo, site.web
    page = site.page

    async def dashboard(request: Request) -> Response:
        if (gate := site.need_read(request)) is not None:
            return gate
        allowed = site.readable_topics(request)
        from harvester.web.dashboard import dashboard_data

        data = dashboard_data(app, allowed)
        return page(request, "dashboard.html.j2", title="harvester", data=data)

    async def topic_page(request: Request) -> Response:
        name = request.path_params["topic"]
        if name not in site.topic_names:
            return page(
                request, "message.html.j2", 404, title="Not found", message="No such topic."
            )
        if (gate := site.need_read(request, name)) is not None:
            return gate
        topic = app.settings.topic(name)
        q = request.query_params.get("q", "").strip()[:200]
        sort = request.query_params.get("sort", "newest")
        sort = sort if sort in SORTS else "newest"
        works = _select(repo.works(name), q)
        query = topic.parsed_query
        items = _ranked(works, name, query, sort)
        size = web.page_size
        pages = max(1, math.ceil(len(items) / size))
        try:
            number = min(max(1, int(request.query_params.get("page", "1"))), pages)
        except ValueError:
            number = 1
        shown = items[(number - 1) * size : number * size]
        views = [
            view_item(item, number=(number - 1) * size + n, query=query)
            for n, item in enumerate(shown, start=1)
        ]
        said = readers.verdicts(repo, [name], [i.work_id for i in shown])
        counts: dict[int, list[int]] = {}
        for v in said:
            c = counts.setdefault(v.work_id, [0, 0])
            c[0 if v.verdict == "relevant" else 1] += 1
        feed = app.settings.feeds.url(name)
        return page(
            request,
            "topic.html.j2",
            title=f"{name} · harvester",
            topic=topic,
            views=views,
            total=len(items),
            number=number,
            pages=pages,
            q=q,
            sort=sort,
            counts=counts,
            vote=site.voter(request, name) is not None,
            feed=feed if safe_url(feed) else None,
        )

    async def topic_export(request: Request) -> Response:
        name, fmt = request.path_params["topic"], request.path_params["fmt"]
        if name not in site.topic_names or fmt not in EXPORTS:
            return Response("not found", status_code=404, media_type="text/plain")
        if (gate := site.need_read(request, name)) is not None:
            return gate
        works = _select(repo.works(name), request.query_params.get("q", "").strip()[:200])
        page_number = request.query_params.get("page")
        if page_number is not None:  # the studies of one page, in the page's order
            sort = request.query_params.get("sort", "newest")
            ranked = _ranked(works, name, app.settings.topic(name).parsed_query, sort)
            by_id = {w.id: w for w in works}
            size = web.page_size
            try:
                start = (max(1, int(page_number)) - 1) * size
            except ValueError:
                start = 0
            works = [by_id[i.work_id] for i in ranked[start : start + size]]
        writer, media, ext = EXPORTS[fmt]
        out = io.StringIO()
        writer(works, out)
        return Response(
            out.getvalue(),
            media_type=media,
            headers={"content-disposition": f'attachment; filename="{name}.{ext}"'},
        )

    async def topic_feedback(request: Request) -> Response:
        """A verdict from the topic page (a session, so a CSRF token): the admin's, or a
        digest recipient's who came through its reading link (recorded as that recipient)."""
        name = request.path_params["topic"]
        topic_names = site.topic_names
        who = site.voter(request, name) if name in topic_names else None
        if who is None:
            return RedirectResponse(f"/login?next=/t/{quote(name, safe='')}", status_code=303)
        form = await request.form()
        if not csrf_ok(request, form.get("csrf")):
            return site.refuse(request, FORM_EXPIRED, 403)
        verdict = str(form.get("verdict", ""))
        try:
            work_id = int(str(form.get("work_id", "")))
        except ValueError:
            work_id = -1
        known = {w.id for w in repo.works(name)} if name in topic_names else set()
        if verdict not in VERDICTS or work_id not in known:
            return site.refuse(request, "Unknown study or verdict.")
        recipient, subscription = who
        readers.record_feedback(repo, recipient, subscription, name, work_id, verdict)
        by = "admin" if recipient == "admin" else "reader"
        log.info("feedback recorded", topic=name, work_id=work_id, verdict=verdict, by=by)
        back = str(form.get("back", ""))
        target = back if back.startswith(f"/t/{quote(name, safe='')}") else f"/t/{quote(name)}"
        return RedirectResponse(f"{target}#w{work_id}", status_code=303)

    async def study_page(request: Request) -> Response:
        try:
            work_id = int(request.path_params["work_id"])
        except ValueError:
            work_id = -1
        from harvester.web.dashboard import study_data

        data = study_data(app, work_id)
        if data is None:
            return page(
                request, "message.html.j2", 404, title="Not found", message="No such study."
            )
        allowed = site.readable_topics(request)
        if allowed is not None and not (allowed & set(data["topics"])):
            return login_redirect(request.url.path)
        return page(request, "study.html.j2", title="study · harvester", **data)

    return [
        Route("/", dashboard),
        Route("/t/{topic}", topic_page),
        Route("/t/{topic}/export.{fmt}", topic_export),
        Route("/t/{topic}/feedback", topic_feedback, methods=["POST"]),
        Route("/w/{work_id}", study_page),
    ]


def _select(works: list[StoredWork], q: str) -> list[StoredWork]:
    """Works whose title, abstract, authors or venue contain every word of ``q``."""
    words = [w.casefold() for w in q.split()]
    if not words:
        return works
    out = []
    for w in works:
        r = w.record
        text = " ".join(
            [r.title or "", r.abstract or "", r.venue or "", *(a.family or "" for a in r.authors)]
        ).casefold()
        if all(word in text for word in words):
            out.append(w)
    return out


def _ranked(works: list[StoredWork], topic: str, query: Any, sort: str) -> list[DigestItem]:
    items = [(w.first_seen, work_item(w, topic, query)) for w in works]
    if sort == "relevant":
        items.sort(key=lambda p: (-p[1].score, -p[1].work_id))
    else:
        items.sort(key=lambda p: (p[0] or datetime.min, p[1].work_id), reverse=True)
    return [i for _, i in items]


def _exports() -> dict[str, tuple[Callable[..., int], str, str]]:
    from harvester.exporters import write_bibtex, write_csljson, write_ris

    return {
        "ris": (write_ris, "application/x-research-info-systems", "ris"),
        "bib": (write_bibtex, "application/x-bibtex", "bib"),
        "json": (write_csljson, "application/vnd.citationstyles.csl+json", "json"),
    }


EXPORTS = _exports()

__all__ = ["EXPORTS", "SORTS", "routes"]
