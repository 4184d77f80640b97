"""Gallery sessions: an encrypted cookie (aiohttp-session), scoped to one person and workspace.

Invariants:
- The cookie is aiohttp-session's `EncryptedCookieStorage` (Fernet: AES-128-CBC + HMAC), its
  key derived from the store's `gallery_secret` (SHA-256 under a label of its own, so it is
  not the link key), so any replica of the deployment reads any replica's cookie. It is
  HttpOnly, SameSite=Lax, path /gallery, Secure when PUBLIC_BASE_URL is https.
- A session is started only by opening a valid, unused link (bot/gallery/routes.py) and holds
  who the link was for, the platform fact it carried, a CSRF token and its start time. It
  lasts GALLERY_SESSION_HOURS from that start, however often it is used (`viewer` checks the
  start time; the cookie's Max-Age and Fernet's TTL say the same).
- Every POST carries the session's CSRF token (`csrf` form field), compared in constant time;
  a POST without it or with another is refused (403) before anything is read or changed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp_session import AbstractStorage, Session, get_session, new_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.domain.models import Requester
from bot.gallery.keys import SESSIONS
from bot.gallery.links import LinkClaims

COOKIE_NAME = "sora_gallery"
COOKIE_PATH = "/gallery"
KEY_LABEL = b"sora-bot gallery session cookie\x00"

#: The clock sessions are started and checked by (tests move it).
clock = time.time


def cookie_key(secret: str) -> bytes:
    """The 32-byte Fernet key of the session cookie, derived from the gallery secret."""
    return hashlib.sha256(KEY_LABEL + secret.encode("utf-8")).digest()


class LateStorage(AbstractStorage):
    """The encrypted cookie storage, its key set once the store is open (app start-up): the
    middleware is installed when the routes are, before the secret can be read."""

    def __init__(self, *, hours: int, secure: bool) -> None:
        self._cookie: dict[str, Any] = {
            "cookie_name": COOKIE_NAME,
            "max_age": hours * 3600,
            "path": COOKIE_PATH,
            "secure": secure,
            "httponly": True,
            "samesite": "Lax",
        }
        super().__init__(**self._cookie)
        self.hours = hours
        self._inner: EncryptedCookieStorage | None = None

    def set_secret(self, secret: str) -> None:
        self._inner = EncryptedCookieStorage(cookie_key(secret), **self._cookie)

    def _ready(self) -> EncryptedCookieStorage:
        if self._inner is None:
            raise RuntimeError("the gallery's session key is not loaded yet")
        return self._inner

    async def load_session(self, request: web.Request) -> Session:
        return await self._ready().load_session(request)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        await self._ready().save_session(request, response, session)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the person the link was for, in the workspace it was for."""

    requester: Requester
    csrf: str

    @property
    def platform(self) -> str:
        return self.requester.platform

    @property
    def workspace(self) -> str:
        return self.requester.workspace

    @property
    def user(self) -> str:
        return self.requester.user


async def start(request: web.Request, claims: LinkClaims) -> None:
    """A fresh session for the person a link was for (any earlier one is replaced)."""
    session = await new_session(request)
    session.update(
        {
            "p": claims.platform,
            "w": claims.workspace,
            "u": claims.user,
            "n": claims.name,
            "a": claims.workspace_admin,
            "csrf": secrets.token_urlsafe(24),
            "t": int(clock()),
        }
    )


def _hours(request: web.Request) -> int:
    return request.config_dict[SESSIONS].hours


async def viewer(request: web.Request) -> Viewer | None:
    """The session's person, or None: no session, or one older than GALLERY_SESSION_HOURS."""
    session = await get_session(request)
    started = session.get("t")
    if session.new or not isinstance(started, int):
        return None
    if clock() - started > _hours(request) * 3600:
        session.invalidate()
        return None
    try:
        requester = Requester(
            platform=str(session["p"]),
            workspace=str(session["w"]),
            user=str(session["u"]),
            display_name=str(session.get("n") or "") or None,
            workspace_admin=session.get("a") is True,
        )
        return Viewer(requester=requester, csrf=str(session["csrf"]))
    except KeyError:
        session.invalidate()
        return None


async def end(request: web.Request) -> None:
    (await get_session(request)).invalidate()


async def flash(request: web.Request, text: str) -> None:
    """A one-line note shown on the next page (after a POST's redirect)."""
    (await get_session(request))["flash"] = text[:500]


async def take_flash(request: web.Request) -> str | None:
    session = await get_session(request)
    text = session.pop("flash", None)
    return str(text) if text else None


def csrf_ok(seen: Viewer, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), seen.csrf.encode())
