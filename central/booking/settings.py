"""The ``[booking]`` section of central's configuration (docs/central.md):
the residents' booking site and the SMTP server its mails go through."""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from central.smtp import SmtpServer
from foundation.config import Section


class SmtpSection(Section):
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(min_length=3)
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_seconds: float = Field(default=10, gt=0, le=120)

    def server(self) -> SmtpServer:
        return SmtpServer(self.host, self.port, self.starttls, self.username, self.password,
                          self.timeout_seconds)  # fmt: skip


class BookingSection(Section):
    # Mount the site under /booking/ on `central serve`.
    enabled: bool = False
    # The site's address as residents reach it (https://...); sign-in links in
    # mails are built from it, never from the request's Host header (which a
    # client chooses). Required when enabled.
    public_url: str = ""
    # Anyone may register with a name and an e-mail address; off: members are
    # created by staff or imported.
    self_registration: bool = False
    sign_in_minutes: int = Field(default=15, ge=5, le=60)
    code_attempts: int = Field(default=5, ge=1, le=10)
    mails_per_hour: int = Field(default=5, ge=1, le=100)
    session_hours: int = Field(default=24, ge=1, le=24 * 30)
    smtp: SmtpSection | None = None

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and (
            urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc
        ):
            raise ValueError("must be an http:// or https:// address")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.enabled and (not self.public_url or self.smtp is None):
            raise ValueError("an enabled booking site needs public_url and [booking.smtp]")
        return self

    def uid_domain(self) -> str:
        """The domain of calendar UIDs: the site's host name."""
        return urlsplit(self.public_url).hostname or "booking.invalid"
