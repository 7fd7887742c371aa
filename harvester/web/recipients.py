"""The routes a digest's recipient reaches through a signed link, and the admin's: unsubscribe
and subscribe again (RFC 8058 one-click included), a verdict from a digest's feedback link,
the admin's login, logout and restoring of a recipient.

A token-authorised GET only shows a confirmation form; only a POST acts. Imports the web
interface's store helpers, tokens and :class:`~harvester.web.site.Site`.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from harvester.config.subscriptions import SubscriptionSettings
from harvester.store import readers
from harvester.web.site import FORM_EXPIRED, Site, csrf_ok, is_admin
from harvester.web.tokens import VERDICTS, BadToken

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom an unsubscribe token names: its recipient, in which subscription."""

    token: str
    recipient: str
    sub: SubscriptionSettings

    def values(self) -> dict[str, Any]:
        """What the unsubscribe and resubscribe pages show of it."""
        return {"sub": self.sub, "token": self.token, "recipient": self.recipient}


def routes(site: Site) -> list[Route]:
    """The unsubscribe, resubscribe, feedback, login, logout and admin routes."""
    app, repo, web = site.app, site.app.repo, site.web
    page, refuse = site.page, site.refuse

    def recipient_of(request: Request, invalid: str) -> Recipient | Response:
        """Whom the path's unsubscribe token names, in which subscription; else the refusal
        (``invalid`` when the token does not check)."""
        token = request.path_params["token"]
        try:
            said = site.signer.check_unsubscribe(token)
        except BadToken:
            return refuse(request, invalid)
        sub = next((s for s in app.settings.subscriptions if s.key == said.subscription), None)
        if sub is None:
            return refuse(request, "This subscription no longer exists.", 404)
        return Recipient(token, said.recipient, sub)

    async def unsubscribe(request: Request) -> Response:
        who = recipient_of(
            request, "This unsubscribe link is not valid (forged, altered or expired)."
        )
        if isinstance(who, Response):
            return who
        if request.method == "POST":
            # RFC 8058 one-click (the body is "List-Unsubscribe=One-Click") or the page's button
            readers.unsubscribe(repo, who.sub.key, who.recipient)
            log.info("recipient unsubscribed", subscription=who.sub.key)
            return page(request, "unsubscribed.html.j2", title="Unsubscribed", **who.values())
        already = who.recipient.lower() in readers.unsubscribed(repo, who.sub.key)
        return page(
            request, "unsubscribe.html.j2", title="Unsubscribe", already=already, **who.values()
        )

    async def resubscribe(request: Request) -> Response:
        who = recipient_of(request, "This link is not valid (forged, altered or expired).")
        if isinstance(who, Response):
            return who
        if request.method == "POST":
            readers.resubscribe(repo, who.sub.key, who.recipient)
            log.info("recipient resubscribed", subscription=who.sub.key)
            return page(
                request,
                "message.html.j2",
                title="Subscribed again",
                message=f"You will receive the digests of {who.sub.key} again.",
            )
        return page(request, "resubscribe.html.j2", title="Subscribe again", **who.values())

    async def feedback(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            said = site.signer.check_feedback(token)
        except BadToken:
            return refuse(request, "This feedback link is not valid (forged, altered or expired).")
        verdict = request.query_params.get("v", "")
        if request.method == "POST":
            form = await request.form()
            verdict = str(form.get("verdict", verdict))
            if verdict not in VERDICTS:
                return refuse(request, "Unknown verdict.")
            readers.record_feedback(
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
            if not csrf_ok(request, form.get("csrf")):
                return refuse(request, FORM_EXPIRED, 403)
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
        if not csrf_ok(request, form.get("csrf")):
            return refuse(request, FORM_EXPIRED, 403)
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    async def admin(request: Request) -> Response:
        if not is_admin(request):
            return RedirectResponse("/login?next=/admin", status_code=303)
        if request.method == "POST":
            form = await request.form()
            if not csrf_ok(request, form.get("csrf")):
                return refuse(request, FORM_EXPIRED, 403)
            sub, recipient = str(form.get("subscription", "")), str(form.get("recipient", ""))
            readers.resubscribe(repo, sub, recipient)
            log.info("admin restored a recipient", subscription=sub)
            return RedirectResponse("/admin", status_code=303)
        return page(request, "admin.html.j2", title="Admin", rows=readers.unsubscriptions(repo))

    return [
        Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/r/{token}", resubscribe, methods=["GET", "POST"]),
        Route("/f/{token}", feedback, methods=["GET", "POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/admin", admin, methods=["GET", "POST"]),
    ]


__all__ = ["Recipient", "routes"]
