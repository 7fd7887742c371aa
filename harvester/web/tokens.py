"""Signed tokens for the links a digest carries: unsubscribe, feedback, reading a topic.

A token is itsdangerous' URL-safe timed signature (HMAC-SHA1 over a key derived from the
secret, per purpose: each purpose has its own salt, so a feedback token never unsubscribes).
It names its recipient and subscription (and for feedback the topic and the work), so it is
verified without a database lookup; rotating the secret revokes every token at once. A token
older than ``[web] token_max_age_days`` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

UNSUBSCRIBE = "harvester.unsubscribe"
FEEDBACK = "harvester.feedback"
READ = "harvester.read"
VERDICTS = ("relevant", "not-relevant")


class BadToken(ValueError):
    """A token that is forged, altered, signed with another secret, or too old."""


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    recipient: str
    subscription: str


@dataclass(frozen=True, slots=True)
class FeedbackToken:
    recipient: str
    subscription: str
    topic: str
    work_id: int


class Signer:
    """Makes and checks the tokens; ``max_age`` in seconds."""

    def __init__(self, secret: str, *, max_age: int) -> None:
        if not secret:
            raise ValueError("a signer needs a secret")
        self._secret = secret
        self.max_age = max_age

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt=purpose)

    def _load(self, purpose: str, token: str, max_age: int | None = None) -> Any:
        try:
            return self._serializer(purpose).loads(token, max_age=max_age or self.max_age)
        except BadData as e:
            raise BadToken(type(e).__name__) from e

    def unsubscribe(self, recipient: str, subscription: str) -> str:
        return str(self._serializer(UNSUBSCRIBE).dumps([recipient, subscription]))

    def check_unsubscribe(self, token: str) -> UnsubscribeToken:
        data = self._load(UNSUBSCRIBE, token)
        if not (
            isinstance(data, list) and len(data) == 2 and all(isinstance(x, str) for x in data)
        ):
            raise BadToken("malformed")
        return UnsubscribeToken(data[0], data[1])

    def feedback(self, recipient: str, subscription: str, topic: str, work_id: int) -> str:
        return str(self._serializer(FEEDBACK).dumps([recipient, subscription, topic, work_id]))

    def check_feedback(self, token: str) -> FeedbackToken:
        data = self._load(FEEDBACK, token)
        if not (
            isinstance(data, list)
            and len(data) == 4
            and all(isinstance(x, str) for x in data[:3])
            and isinstance(data[3], int)
        ):
            raise BadToken("malformed")
        return FeedbackToken(data[0], data[1], data[2], data[3])

    def read(self, subscription: str, recipient: str | None = None) -> str:
        """A link that lets a subscription's readers see its topics' pages without a login;
        with ``recipient`` (whom the digest went to) its visitor may also vote there, as
        that recipient."""
        data: str | list[str] = subscription if recipient is None else [subscription, recipient]
        return str(self._serializer(READ).dumps(data))

    def check_read(self, token: str) -> str:
        return self.check_reader(token)[0]

    def check_reader(self, token: str) -> tuple[str, str | None]:
        """(subscription, recipient or None) of a reading token."""
        data = self._load(READ, token)
        if isinstance(data, str):
            return data, None
        if isinstance(data, list) and len(data) == 2 and all(isinstance(x, str) for x in data):
            return data[0], data[1]
        raise BadToken("malformed")


def signer_for(secret: str | None, max_age_days: int) -> Signer | None:
    return Signer(secret, max_age=max_age_days * 86400) if secret else None
