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
unsubscribe/feedback ones (a mail provider's RFC 8058 one-click POST has no session).

The routes live by concern: :mod:`.topics` (dashboard, topic pages, exports, study pages),
:mod:`.recipients` (signed unsubscribe/feedback links, the admin's login); what they share
(templates, the visitor's rights, CSRF) is :mod:`.site`. This module puts them together with
the security headers, the session middleware and ``/healthz``."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harvester.app import App
from harvester.errors import ConfigError
from harvester.web import recipients, topics
from harvester.web.site import HERE, Site
from harvester.web.tokens import signer_for

log = structlog.get_logger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


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
    site = Site(app, signer)
    repo = app.repo

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
        *topics.routes(site),
        *recipients.routes(site),
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


__all__ = ["CSP", "create_app"]
