"""A v3 company's token pair: stored encrypted, renewed ahead of expiry by one executor at a time.

Keycloak rotates refresh tokens: a refresh returns a new pair and the old refresh token stops
working. Two processes refreshing at once would leave one of them (and then the company) with
a dead token. So a refresh happens only inside the company row's lock — `SELECT … FOR UPDATE`
on PostgreSQL; on SQLite every transaction takes the write lock at its BEGIN (`core.db`) —
which is held across the call to Tiny's token endpoint and the write of the new pair, in one
transaction. Whoever gets the lock second re-reads the row, finds the winner's fresh pair
and uses it instead of refreshing again.

A refresh Tiny refuses (`invalid_grant`: the refresh token lapsed or was revoked) marks the
company `needsReconnect` with the reason: its runs then fail at once with "precisa
reconectar", and the UI offers "Conectar ao Tiny" again; connecting stores a new pair and
clears the mark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.crypto import decrypt_token, encrypt_token
from core.errors import RECONNECT_SENTENCE, NotFoundError, TinyReconnectNeeded, ValidationError
from core.models import Company, utcnow
from core.settings import Settings
from core.v3.oauth import OAuthClient, TokenPair

log = logging.getLogger(__name__)

V2, V3 = "v2", "v3"


def reconnect_message(company: Company) -> str:
    """The sentence a v3 company's runs fail with when it needs connecting again."""
    reason = company.needsReconnectReason
    return f"{RECONNECT_SENTENCE}" + (f" ({reason})" if reason else "")


def store_pair(company: Company, pair: TokenPair, settings: Settings) -> None:
    """Put a new pair on the company (encrypted) and clear any reconnect mark; caller commits."""
    keys = settings.secret_keys
    company.v3AccessTokenEncrypted = encrypt_token(pair.access_token, keys)
    company.v3RefreshTokenEncrypted = encrypt_token(pair.refresh_token, keys)
    company.v3AccessExpiresAt = pair.access_expires_at
    company.v3RefreshExpiresAt = pair.refresh_expires_at
    company.v3TokenRefreshedAt = utcnow()
    company.needsReconnect = False
    company.needsReconnectReason = None


def client_secret(company: Company, settings: Settings) -> str:
    """The company's v3 app secret, decrypted for a token call; never log or return it."""
    if not company.v3ClientId or not company.v3ClientSecretEncrypted:
        raise ValidationError(f"company {company.id} has no Tiny v3 app (client id and secret)")
    return decrypt_token(company.v3ClientSecretEncrypted, settings.secret_keys)


def _fresh(company: Company, now: datetime, ahead: timedelta) -> str | None:
    """The stored access token if it has more than `ahead` left, else None."""
    if not company.v3AccessTokenEncrypted or company.v3AccessExpiresAt is None:
        return None
    if company.v3AccessExpiresAt - now <= ahead:
        return None
    return company.v3AccessTokenEncrypted


def needs_idle_refresh(company: Company, now: datetime, ahead: timedelta) -> bool:
    """Whether beat should refresh this idle company now: its access token is due, or its
    refresh token has less than half its lifetime left (so it never lapses unused)."""
    if company.apiVersion != V3 or company.needsReconnect or not company.v3RefreshTokenEncrypted:
        return False
    if company.v3AccessExpiresAt is None or company.v3AccessExpiresAt - now <= ahead:
        return True
    lapses, since = company.v3RefreshExpiresAt, company.v3TokenRefreshedAt
    if lapses is None or since is None:
        return True
    return lapses - now <= max(ahead, (lapses - since) / 2)


@dataclass
class TokenRenewer:
    """The access tokens of v3 companies, refreshed by one executor at a time (row lock)."""

    session_factory: sessionmaker[Session]
    settings: Settings
    oauth: OAuthClient

    @property
    def ahead(self) -> timedelta:
        return timedelta(seconds=self.settings.tiny_v3_refresh_ahead_seconds)

    def access_token(self, company_id: str, *, refused: str | None = None) -> str:
        """A valid access token for the company: the stored one while it has more than
        TINY_V3_REFRESH_AHEAD_SECONDS left (and is not `refused`, one Tiny answered 401 to),
        else a refreshed one. TinyReconnectNeeded when only a person can help."""
        with self.session_factory() as session:
            company = self._company(session, company_id, lock=False)
            token = self._usable(company, refused)
        if token is not None:
            return token
        return self.refresh(company_id, refused=refused)

    def refresh(self, company_id: str, *, refused: str | None = None, force: bool = False) -> str:
        """Refresh the company's pair under its row lock, unless another executor just did.

        `force` refreshes even a fresh pair (beat keeping an idle refresh token alive, once
        the caller decided it is due; a pair refreshed meanwhile by a run is then kept).
        """
        with self.session_factory() as session:
            company = self._company(session, company_id, lock=True)
            seen = company.v3TokenRefreshedAt
            token = None if force else self._usable(company, refused)
            if token is not None:  # another executor refreshed while we waited for the lock
                session.rollback()
                return token
            if force and seen is not None and not needs_idle_refresh(company, utcnow(), self.ahead):
                session.rollback()
                return decrypt_token(
                    company.v3AccessTokenEncrypted or "", self.settings.secret_keys
                )
            if not company.v3RefreshTokenEncrypted:
                self._lost(session, company, "a empresa ainda não foi conectada ao Tiny")
            keys = self.settings.secret_keys
            try:
                pair = self.oauth.refresh(
                    client_id=company.v3ClientId or "",
                    client_secret=client_secret(company, self.settings),
                    refresh_token=decrypt_token(company.v3RefreshTokenEncrypted or "", keys),
                )
            except TinyReconnectNeeded as exc:
                self._lost(session, company, str(exc))
            store_pair(company, pair, self.settings)
            session.commit()
            log.info("refreshed the Tiny v3 token pair of company %s", company_id)
            return pair.access_token

    def _usable(self, company: Company, refused: str | None) -> str | None:
        if company.needsReconnect:
            raise TinyReconnectNeeded(reconnect_message(company))
        stored = _fresh(company, utcnow(), self.ahead)
        if stored is None:
            return None
        token = decrypt_token(stored, self.settings.secret_keys)
        return None if refused is not None and token == refused else token

    def _company(self, session: Session, company_id: str, *, lock: bool) -> Company:
        query = (
            select(Company)
            .where(Company.id == company_id)
            .execution_options(populate_existing=True)
        )
        if lock:
            query = query.with_for_update()
        company = session.scalar(query)
        if company is None:
            raise NotFoundError(f"company {company_id} not found")
        if company.apiVersion != V3:
            raise ValidationError(f"company {company_id} uses Tiny API {company.apiVersion}")
        return company

    def mark_lost(self, company_id: str, reason: str) -> TinyReconnectNeeded:
        """Mark the company as needing reconnecting (Tiny refused a renewed token)."""
        with self.session_factory() as session:
            company = self._company(session, company_id, lock=True)
            try:
                self._lost(session, company, reason)
            except TinyReconnectNeeded as exc:
                return exc

    def _lost(self, session: Session, company: Company, reason: str) -> NoReturn:
        """Mark the company as needing a person to connect it again; raise for the caller."""
        company.needsReconnect = True
        company.needsReconnectReason = reason[:500]
        session.commit()
        log.warning("company %s needs reconnecting to Tiny: %s", company.id, reason)
        raise TinyReconnectNeeded(reconnect_message(company))

    def bearer(self, company_id: str) -> CompanyBearer:
        """The `core.v3.client.Bearer` of one company."""
        return CompanyBearer(self, company_id)


@dataclass
class CompanyBearer:
    """One company's access token for `V3Client` calls."""

    renewer: TokenRenewer
    company_id: str

    def token(self) -> str:
        return self.renewer.access_token(self.company_id)

    def renew(self, refused: str) -> str:
        return self.renewer.access_token(self.company_id, refused=refused)

    def lost(self, reason: str) -> TinyReconnectNeeded:
        return self.renewer.mark_lost(self.company_id, reason)


def refresh_idle(renewer: TokenRenewer) -> tuple[int, int]:
    """Refresh every v3 company that is due (see `needs_idle_refresh`): (refreshed, lost)."""
    now = utcnow()
    with renewer.session_factory() as session:
        due = [
            c.id
            for c in session.scalars(select(Company).where(Company.apiVersion == V3))
            if needs_idle_refresh(c, now, renewer.ahead)
        ]
    refreshed = lost = 0
    for company_id in due:
        try:
            renewer.refresh(company_id, force=True)
            refreshed += 1
        except TinyReconnectNeeded:
            lost += 1
    return refreshed, lost
