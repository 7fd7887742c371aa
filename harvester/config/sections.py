"""The tables of plain settings: the database, each source, the daemon, HTTP limits, the
published feeds and the web interface."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, field_validator

from harvester.config.base import Strict, WithSecrets

DEFAULT_DATABASE_URL = "sqlite:///harvester.db"


class DatabaseSettings(Strict):
    url: str = DEFAULT_DATABASE_URL


class SourceSettings(WithSecrets):
    """Per-source settings; every key optional, each source has its real default."""

    SECRETS = {"api_key": "api_key_env"}

    base_url: str | None = None
    email: str | None = None
    mailto: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True)
    requests_per_second: float | None = Field(default=None, gt=0)
    overlap_days: int | None = Field(default=None, ge=0, le=365)
    page_size: int | None = Field(default=None, gt=0)
    # decoded bytes one response may have; None: [http] max_response_bytes
    max_response_bytes: int | None = Field(default=None, gt=0)
    # the largest record read; a larger one is skipped (sources/base.py MAX_RECORD_BYTES)
    max_record_bytes: int | None = Field(default=None, ge=1000)

    @property
    def contact(self) -> str | None:
        return self.email or self.mailto


class DaemonSettings(Strict):
    """How `harvester run` schedules (all optional)."""

    jitter_seconds: int = Field(default=60, ge=0)  # spreads replicas' and topics' start times
    misfire_grace_seconds: int = Field(default=3600, gt=0)
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    digest_retry_seconds: float = Field(default=300.0, gt=0)  # how often unsent digests retry
    # a harvest running longer is reported by /healthz (503, naming the job): 3 h
    max_run_seconds: float = Field(default=10800.0, gt=0)
    # harvest runs older than this are rolled up into daily counts per topic × source
    # (harvest_run_days) every few hours; 0 keeps every run
    run_retention_days: int = Field(default=90, ge=0)


class HttpSettings(Strict):
    """Limits of every HTTP request the app makes (API pages and Slack posts)."""

    timeout_seconds: float = Field(default=30.0, gt=0)  # per connect / read / write
    request_deadline_seconds: float = Field(default=120.0, gt=0)  # per attempt, in total
    max_response_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # decoded, per response


class FeedsSettings(Strict):
    """Where the topics' Atom feeds (`harvester feed`) are published, if anywhere: digests
    link the studies they hold back to ``base_url``/TOPIC.atom (or ``base_url`` with
    ``{topic}`` replaced)."""

    base_url: str | None = None

    def url(self, topic: str) -> str | None:
        if not self.base_url:
            return None
        if "{topic}" in self.base_url:
            return self.base_url.replace("{topic}", topic)
        return f"{self.base_url.rstrip('/')}/{topic}.atom"


class WebSettings(Strict):
    """The web interface (`harvester web`): its public address, where its secrets come from,
    and whether reading needs a login. Links in digests (unsubscribe, feedback, topic pages)
    are built from ``base_url`` only when it is set and the signing secret is in the
    environment; the secrets are read when used, never stored in the settings."""

    base_url: str | None = None
    secret_env: str = "HARVESTER_WEB_SECRET"
    admin_password_env: str = "HARVESTER_WEB_ADMIN_PASSWORD"
    public_read: bool = False
    token_max_age_days: int = Field(default=365, gt=0, le=3650)
    page_size: int = Field(default=25, gt=0, le=500)

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for loopback)")
        return v.rstrip("/") if v else v

    def secret(self) -> str | None:
        """The signing secret from ``secret_env`` (None when unset or empty)."""
        return os.environ.get(self.secret_env) or None

    def admin_password(self) -> str | None:
        return os.environ.get(self.admin_password_env) or None

    @property
    def links(self) -> bool:
        """Whether digests carry signed web links (a base URL and a secret are both there)."""
        return bool(self.base_url) and self.secret() is not None
