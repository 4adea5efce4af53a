"""One-time sign-in links: a random token in a URL that signs a browser in once, for minutes.

`tinysync demo --serve` prints one, so the newcomer lands signed in on the demo's reports
without an admin token to type. Only the token's SHA-256 is stored (`SignInLink`); a link is
spent by a conditional update, so two browsers racing with one link cannot both sign in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.models import SignInLink, utcnow

#: How long a sign-in link works, unless the caller says otherwise.
SIGN_IN_LINK_MINUTES = 10
#: A token longer than this is no token of ours (and is not hashed).
MAX_TOKEN_CHARS = 200


def _row_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_sign_in_link(db: Session, minutes: float = SIGN_IN_LINK_MINUTES) -> str:
    """A new one-time sign-in token, valid for `minutes`; only its hash is stored (commits)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(minutes=minutes)
    db.add(SignInLink(id=_row_id(token), createdAt=now, expiresAt=expires))
    db.commit()
    return token


def redeem_sign_in_link(db: Session, token: str) -> bool:
    """Spend the link: True the first time within its minutes, False ever after (commits)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return False
    now = utcnow()
    spent = db.execute(
        update(SignInLink)
        .where(
            SignInLink.id == _row_id(token),
            SignInLink.usedAt.is_(None),
            SignInLink.expiresAt > now,
        )
        .values(usedAt=now)
    )
    db.commit()
    return bool(getattr(spent, "rowcount", 0) == 1)
