"""The Starlette app: server-rendered pages over the store, no JavaScript.

Security model: every response carries a restrictive Content-Security-Policy (no scripts,
styles only from this origin, forms only to this origin, no framing) and ``Referrer-Policy:
no-referrer`` (links carry tokens). Templates autoescape every value (titles and abstracts
come from outside). Unsubscribe and feedback links carry signed tokens naming their
recipient: they work without a login, a GET only shows a confirmation form and only a POST
acts. Reading pages needs ``[web] public_read``, an admin login, or a subscription's signed
reading link (which a digest carries, signed for its recipient: a visitor who came through
it may also vote on the subscription's topic pages, recorded as that recipient); the session
is a signed cookie (HttpOnly, SameSite=Lax, Secure when ``base_url`` is https); every form
of a session carries a CSRF token, checked on every POST but the token-authorised
unsubscribe/feedback ones (a mail provider's RFC 8058 one-click POST has no session)."""

from __future__ import annotations

import hmac
import io
import math
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harvester.app import App
from harvester.digests.assemble import DigestItem, record_links, work_item
from harvester.digests.render import ItemView, link_label, safe_url, view_item
from harvester.errors import ConfigError
from harvester.records import StoredWork
from harvester.web import store as web_store
from harvester.web.tokens import VERDICTS, BadToken, signer_for

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SORTS = ("newest", "relevant")


class SecurityHeaders:
    """Sets the security headers on every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["link_label"] = link_label
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else "never"
    env.filters["q"] = lambda s: quote(str(s), safe="")
    return env


def create_app(
    app: App,
    *,
    secret: str | None = None,
    health: Callable[[], tuple[bool, str]] | None = None,
) -> Starlette:
    """The ASGI app over ``app`` (its settings and repository). The signing secret comes from
    ``[web] secret_env`` (or ``secret``: `harvester web` makes one for the process when the
    variable is unset); without one the app refuses to start.
    ``health`` is the daemon's check when the daemon serves the app (``run --http-port``):
    ``/healthz`` then answers as the daemon's own health endpoint does."""
    web = app.settings.web
    secret = secret or web.secret()
    signer = signer_for(secret, web.token_max_age_days)
    if signer is None or secret is None:
        raise ConfigError(
            f"the web interface needs a signing secret: set the environment variable "
            f"{web.secret_env} ([web] secret_env) to a long random value"
        )
    env = _templates()
    repo = app.repo
    topic_names = {t.name for t in app.settings.topics}

    def page(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("admin", _admin(request))
        html = env.get_template(name).render(csrf=_csrf(request), request=request, **values)
        return HTMLResponse(html, status_code=status)

    def refuse(request: Request, why: str, status: int = 400) -> HTMLResponse:
        # the route only: a path may hold a token, which is a recipient's credential
        log.info("web request refused", route=request.url.path.split("/")[1], why=why)
        return page(request, "message.html.j2", status, title="Refused", message=why)

    def readable_topics(request: Request) -> set[str] | None:
        """Topics this visitor may read (None: every topic)."""
        if web.public_read or _admin(request):
            return None
        token = request.query_params.get("k")
        if token:
            sub: str | None
            recipient: str | None
            try:
                sub, recipient = signer.check_reader(token)
            except BadToken:
                sub = recipient = None
            if sub is not None:
                subs = set(request.session.get("subs", []))
                subs.add(sub)
                request.session["subs"] = sorted(subs)
            if sub is not None and recipient is not None:
                # the digest's recipient: may vote on the subscription's topics, as themself
                voters = dict(request.session.get("voters", {}))
                voters[sub] = recipient
                request.session["voters"] = voters
        allowed: set[str] = set()
        for s in app.settings.subscriptions:
            if s.key in request.session.get("subs", []):
                allowed.update(s.topics)
        return allowed

    def voter(request: Request, topic: str) -> tuple[str, str] | None:
        """(recipient, subscription) a visitor votes as on ``topic``: the admin, or the
        recipient of a digest whose signed reading link opened this session."""
        if _admin(request):
            return "admin", "web"
        voters = request.session.get("voters", {})
        for s in app.settings.subscriptions:
            if topic in s.topics and isinstance(voters.get(s.key), str):
                return str(voters[s.key]), s.key
        return None

    def need_read(request: Request, topic: str | None = None) -> Response | None:
        allowed = readable_topics(request)
        if (
            allowed is None
            or (topic is None and allowed)
            or (topic is not None and topic in allowed)
        ):
            return None
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    async def dashboard(request: Request) -> Response:
        if (gate := need_read(request)) is not None:
            return gate
        allowed = readable_topics(request)
        from harvester.web.dashboard import dashboard_data

        data = dashboard_data(app, allowed)
        return page(request, "dashboard.html.j2", title="harvester", data=data)

    async def topic_page(request: Request) -> Response:
        name = request.path_params["topic"]
        if name not in {t.name for t in app.settings.topics}:
            return page(
                request, "message.html.j2", 404, title="Not found", message="No such topic."
            )
        if (gate := need_read(request, name)) is not None:
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
        said = web_store.verdicts(repo, [name], [i.work_id for i in shown])
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
            vote=voter(request, name) is not None,
            feed=feed if safe_url(feed) else None,
        )

    async def topic_export(request: Request) -> Response:
        name, fmt = request.path_params["topic"], request.path_params["fmt"]
        if name not in {t.name for t in app.settings.topics} or fmt not in EXPORTS:
            return Response("not found", status_code=404, media_type="text/plain")
        if (gate := need_read(request, name)) is not None:
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
        who = voter(request, name) if name in topic_names else None
        if who is None:
            return RedirectResponse(f"/login?next=/t/{quote(name, safe='')}", status_code=303)
        form = await request.form()
        if not _csrf_ok(request, form.get("csrf")):
            return refuse(request, "The form has expired or was not sent by this site.", 403)
        verdict = str(form.get("verdict", ""))
        try:
            work_id = int(str(form.get("work_id", "")))
        except ValueError:
            work_id = -1
        known = {w.id for w in repo.works(name)} if name in topic_names else set()
        if verdict not in VERDICTS or work_id not in known:
            return refuse(request, "Unknown study or verdict.")
        recipient, subscription = who
        web_store.record_feedback(repo, recipient, subscription, name, work_id, verdict)
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
        allowed = readable_topics(request)
        if allowed is not None and not (allowed & set(data["topics"])):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return page(request, "study.html.j2", title="study · harvester", **data)

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            said = signer.check_unsubscribe(token)
        except BadToken:
            return refuse(
                request, "This unsubscribe link is not valid (forged, altered or expired)."
            )
        sub = next((s for s in app.settings.subscriptions if s.key == said.subscription), None)
        if sub is None:
            return refuse(request, "This subscription no longer exists.", 404)
        if request.method == "POST":
            # RFC 8058 one-click (the body is "List-Unsubscribe=One-Click") or the page's button
            web_store.unsubscribe(repo, sub.key, said.recipient)
            log.info("recipient unsubscribed", subscription=sub.key)
            return page(
                request,
                "unsubscribed.html.j2",
                title="Unsubscribed",
                sub=sub,
                token=token,
                recipient=said.recipient,
            )
        return page(
            request,
            "unsubscribe.html.j2",
            title="Unsubscribe",
            sub=sub,
            token=token,
            recipient=said.recipient,
            already=said.recipient.lower() in web_store.unsubscribed(repo, sub.key),
        )

    async def resubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            said = signer.check_unsubscribe(token)
        except BadToken:
            return refuse(request, "This link is not valid (forged, altered or expired).")
        sub = next((s for s in app.settings.subscriptions if s.key == said.subscription), None)
        if sub is None:
            return refuse(request, "This subscription no longer exists.", 404)
        if request.method == "POST":
            web_store.resubscribe(repo, sub.key, said.recipient)
            log.info("recipient resubscribed", subscription=sub.key)
            return page(
                request,
                "message.html.j2",
                title="Subscribed again",
                message=f"You will receive the digests of {sub.key} again.",
            )
        return page(
            request,
            "resubscribe.html.j2",
            title="Subscribe again",
            sub=sub,
            token=token,
            recipient=said.recipient,
        )

    async def feedback(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            said = signer.check_feedback(token)
        except BadToken:
            return refuse(request, "This feedback link is not valid (forged, altered or expired).")
        verdict = request.query_params.get("v", "")
        if request.method == "POST":
            form = await request.form()
            verdict = str(form.get("verdict", verdict))
            if verdict not in VERDICTS:
                return refuse(request, "Unknown verdict.")
            web_store.record_feedback(
                repo, said.recipient, said.subscription, said.topic, said.work_id, verdict
            )
            log.info("feedback recorded", topic=said.topic, work_id=said.work_id, verdict=verdict)
            return page(
                request,
                "message.html.j2",
                title="Thank you",
                message=f"Recorded: {verdict.replace('-', ' ')} for {said.topic}.",
            )
        from harvester.web.dashboard import study_data

        data = study_data(app, said.work_id)
        title = data["record"].title if data else None
        return page(
            request,
            "feedback.html.j2",
            title="Feedback",
            token=token,
            verdict=verdict if verdict in VERDICTS else None,
            topic=said.topic,
            study_title=title,
        )

    async def login(request: Request) -> Response:
        target = request.query_params.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if request.method == "POST":
            form = await request.form()
            if not _csrf_ok(request, form.get("csrf")):
                return refuse(request, "The form has expired or was not sent by this site.", 403)
            expected = web.admin_password()
            given = str(form.get("password", ""))
            if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
                log.info("admin login failed")
                return page(
                    request, "login.html.j2", 401, title="Log in", target=target, failed=True
                )
            request.session["admin"] = True
            request.session["csrf"] = secrets.token_urlsafe(24)  # a new session: a new token
            log.info("admin logged in")
            return RedirectResponse(target, status_code=303)
        return page(request, "login.html.j2", title="Log in", target=target, failed=False)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(request, form.get("csrf")):
            return refuse(request, "The form has expired or was not sent by this site.", 403)
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    async def admin(request: Request) -> Response:
        if not _admin(request):
            return RedirectResponse("/login?next=/admin", status_code=303)
        if request.method == "POST":
            form = await request.form()
            if not _csrf_ok(request, form.get("csrf")):
                return refuse(request, "The form has expired or was not sent by this site.", 403)
            sub, recipient = str(form.get("subscription", "")), str(form.get("recipient", ""))
            web_store.resubscribe(repo, sub, recipient)
            log.info("admin restored a recipient", subscription=sub)
            return RedirectResponse("/admin", status_code=303)
        return page(request, "admin.html.j2", title="Admin", rows=web_store.unsubscriptions(repo))

    async def healthz(request: Request) -> Response:
        if health is not None:
            try:
                healthy, detail = health()
            except Exception as e:  # a failing check is an unhealthy answer, not a crash
                healthy, detail = False, f"check failed: {e}"
            body = ("ok" if healthy else "unhealthy") + f": {detail}\n"
            return PlainTextResponse(body, status_code=200 if healthy else 503)
        try:
            repo.count_works()
        except Exception as e:  # the database is what this process needs to answer anything
            log.warning("health check failed", error=str(e))
            return JSONResponse({"ok": False, "detail": "database unreachable"}, status_code=503)
        return JSONResponse({"ok": True})

    routes = [
        Route("/", dashboard),
        Route("/t/{topic}", topic_page),
        Route("/t/{topic}/export.{fmt}", topic_export),
        Route("/t/{topic}/feedback", topic_feedback, methods=["POST"]),
        Route("/w/{work_id}", study_page),
        Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/r/{token}", resubscribe, methods=["GET", "POST"]),
        Route("/f/{token}", feedback, methods=["GET", "POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/admin", admin, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    https = bool(web.base_url and web.base_url.startswith("https://"))
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret + ":session",
                session_cookie="harvester_session",
                max_age=12 * 3600,
                same_site="lax",
                https_only=https,
            ),
        ],
    )


def _admin(request: Request) -> bool:
    return bool(request.session.get("admin"))


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def _csrf_ok(request: Request, given: object) -> bool:
    expected = request.session.get("csrf")
    return (
        isinstance(given, str)
        and isinstance(expected, str)
        and hmac.compare_digest(given.encode(), expected.encode())
    )


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

__all__ = ["CSP", "ItemView", "create_app", "record_links"]
