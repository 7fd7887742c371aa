"""What every route of the web interface shares: the templates, the page and refusal
responses, who the visitor is (admin, a digest reader through a signed reading link) and the
session's CSRF token.

:class:`Site` is built once by :func:`harvester.web.server.create_app`; the route modules
(:mod:`.topics`, :mod:`.recipients`) take it. Imports the app, the digests' ``link_label``
and the web tokens; no route imports another route module.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from harvester.app import App
from harvester.config.sections import WebSettings
from harvester.digests.render import link_label
from harvester.web.tokens import BadToken, Signer

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
FORM_EXPIRED = "The form has expired or was not sent by this site."


def templates() -> jinja2.Environment:
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


@dataclass
class Site:
    """The app, its web settings and signer, and the templates, for the routes."""

    app: App
    signer: Signer
    env: jinja2.Environment = field(default_factory=templates)

    @property
    def web(self) -> WebSettings:
        return self.app.settings.web

    @property
    def topic_names(self) -> set[str]:
        return {t.name for t in self.app.settings.topics}

    def page(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("admin", is_admin(request))
        template = self.env.get_template(name)
        html = template.render(csrf=csrf(request), request=request, **values)
        return HTMLResponse(html, status_code=status)

    def refuse(self, request: Request, why: str, status: int = 400) -> HTMLResponse:
        # the route only: a path may hold a token, which is a recipient's credential
        log.info("web request refused", route=request.url.path.split("/")[1], why=why)
        return self.page(request, "message.html.j2", status, title="Refused", message=why)

    def readable_topics(self, request: Request) -> set[str] | None:
        """Topics this visitor may read (None: every topic)."""
        if self.web.public_read or is_admin(request):
            return None
        token = request.query_params.get("k")
        if token:
            sub: str | None
            recipient: str | None
            try:
                sub, recipient = self.signer.check_reader(token)
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
        for s in self.app.settings.subscriptions:
            if s.key in request.session.get("subs", []):
                allowed.update(s.topics)
        return allowed

    def voter(self, request: Request, topic: str) -> tuple[str, str] | None:
        """(recipient, subscription) a visitor votes as on ``topic``: the admin, or the
        recipient of a digest whose signed reading link opened this session."""
        if is_admin(request):
            return "admin", "web"
        voters = request.session.get("voters", {})
        for s in self.app.settings.subscriptions:
            if topic in s.topics and isinstance(voters.get(s.key), str):
                return str(voters[s.key]), s.key
        return None

    def need_read(self, request: Request, topic: str | None = None) -> Response | None:
        allowed = self.readable_topics(request)
        if (
            allowed is None
            or (topic is None and allowed)
            or (topic is not None and topic in allowed)
        ):
            return None
        return login_redirect(request.url.path)


def login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)


def is_admin(request: Request) -> bool:
    return bool(request.session.get("admin"))


def csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def csrf_ok(request: Request, given: object) -> bool:
    expected = request.session.get("csrf")
    return (
        isinstance(given, str)
        and isinstance(expected, str)
        and hmac.compare_digest(given.encode(), expected.encode())
    )


__all__ = ["FORM_EXPIRED", "Site", "csrf", "csrf_ok", "is_admin", "login_redirect", "templates"]
