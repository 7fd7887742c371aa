"""The links a digest carries to the web interface, filled in per recipient.

A rendered digest (``render_digest(..., web=BASE)``) holds placeholders: ``__HV_UNSUB__``
(the recipient's unsubscribe token), ``__HV_READ__`` (the subscription's reading token, signed
for the recipient too, who may then vote on the topic page) and ``__HV_FB_n__`` (the feedback
token of the n-th study). :func:`personalize` replaces them with
tokens signed for one recipient; tokens are URL-safe (letters, digits, ``-_.``), so they go
into HTML and text unescaped."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from harvester.digests.render import RenderedDigest
from harvester.web.tokens import Signer

_FEEDBACK = re.compile(r"__HV_FB_(-?\d+)__")


def unsubscribe_url(base: str, signer: Signer, recipient: str, subscription: str) -> str:
    return f"{base}/u/{signer.unsubscribe(recipient, subscription)}"


def personalize(rendered: RenderedDigest, recipient: str, signer: Signer) -> RenderedDigest:
    """``rendered`` with its web links signed for ``recipient``."""
    if not rendered.web:
        return rendered
    sub = rendered.subscription
    unsub = signer.unsubscribe(recipient, sub)
    read = signer.read(sub, recipient)
    tokens: dict[int, str] = {}

    def feedback(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in tokens:
            if not 0 <= n < len(rendered.items):
                return "invalid"
            topic, work_id = rendered.items[n]
            tokens[n] = signer.feedback(recipient, sub, topic, work_id)
        return tokens[n]

    def fill(text: str) -> str:
        text = text.replace("__HV_UNSUB__", unsub).replace("__HV_READ__", read)
        return _FEEDBACK.sub(feedback, text)

    return dataclasses.replace(rendered, text=fill(rendered.text), html=fill(rendered.html))


def slack_recipient(subscription: str) -> str:
    """Who a Slack digest's verdicts are recorded as: a channel has no one reader, so the
    subscription's channel is the recipient (its "not relevant" acts on that subscription)."""
    return f"slack:{subscription}"


def slack_feedback(
    base: str, signer: Signer, subscription: str
) -> Callable[[str, int], tuple[str, str]]:
    """(relevant URL, not relevant URL) of a topic × work in a Slack digest: the same signed
    feedback links as an email's (GET confirms, POST records), signed for the channel."""
    recipient = slack_recipient(subscription)

    def urls(topic: str, work_id: int) -> tuple[str, str]:
        url = f"{base}/f/{signer.feedback(recipient, subscription, topic, work_id)}"
        return f"{url}?v=relevant", f"{url}?v=not-relevant"

    return urls


def slack_topic_links(
    rendered: RenderedDigest, base: str, signer: Signer, topics: tuple[str, ...]
) -> RenderedDigest:
    """A Slack digest with a last line linking each topic's page (with the subscription's
    signed reading link): a channel has no one recipient, so it carries no unsubscribe
    link (its studies' feedback links are signed for :func:`slack_recipient`). The line
    joins the last message when it fits Slack's limits, else it is a message of its own (the
    same for every try of one digest, so parts stay aligned)."""
    from urllib.parse import quote

    from harvester.digests.blocks import MAX_BLOCKS, MESSAGE_CHARS, _chars, escape

    if not rendered.slack:
        return rendered
    read = signer.read(rendered.subscription, slack_recipient(rendered.subscription))
    links = " · ".join(f"<{base}/t/{quote(t, safe='')}?k={read}|{escape(t)}>" for t in topics)
    block = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"All studies: {links}"}]}
    payloads = list(rendered.slack)
    last = dict(payloads[-1])
    blocks = list(last["blocks"])
    if len(blocks) < MAX_BLOCKS and _chars(blocks) + len(links) + 20 <= MESSAGE_CHARS:
        last["blocks"] = [*blocks, block]
        payloads[-1] = last
    else:
        payloads.append({**last, "blocks": [block]})
    return dataclasses.replace(rendered, slack=tuple(payloads))
