"""What a process needs to read v3 companies: the v3 client and the OAuth client, built once
(`core.services.build_services`) and handed to the steps beside the v2 client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session, sessionmaker

from core.models import Company
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.v3.client import V3Client
from core.v3.oauth import OAuthClient
from core.v3.source import V3Source
from core.v3.tokens import TokenRenewer

#: Where the in-process sandbox (TINY_API_URL=sandbox) answers v3 and OAuth.
SANDBOX_V3_URL = "http://sandbox.local/public-api/v3"
SANDBOX_TOKEN_URL = "http://sandbox.local/realms/tiny/protocol/openid-connect/token"


@dataclass
class V3Access:
    """The v3 resources client and the token endpoint client of one process."""

    client: V3Client
    oauth: OAuthClient

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
    ) -> V3Access:
        """The clients for `settings` (the in-process sandbox's URLs when it is the Tiny)."""
        sandbox = settings.uses_sandbox
        return cls(
            client=V3Client(
                settings,
                transport=transport,
                limiter=limiter,
                base_url=SANDBOX_V3_URL if sandbox else None,
            ),
            oauth=OAuthClient(
                settings, transport=transport, token_url=SANDBOX_TOKEN_URL if sandbox else None
            ),
        )

    def renewer(self, session_factory: sessionmaker[Session], settings: Settings) -> TokenRenewer:
        """The token renewer over this process's database."""
        return TokenRenewer(session_factory, settings, self.oauth)

    def source(
        self, session_factory: sessionmaker[Session], settings: Settings, company: Company
    ) -> V3Source:
        """Where a v3 company's modules read Tiny from."""
        bearer = self.renewer(session_factory, settings).bearer(company.id)
        return V3Source(self.client, bearer, company.tinyAccountKey)

    def close(self) -> None:
        """Close both connection pools."""
        self.client.close()
        self.oauth.close()
