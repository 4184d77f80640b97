"""Signed, timed, single-use links into the gallery: what `/sora gallery` answers in chat.

    gallery_link_for(settings, store, requester) → "https://HOST/gallery/open?t=TOKEN"
    GalleryLinks.read(token) → LinkClaims      (LinkRefused: tampered, expired, malformed)

Invariants:
- A token is itsdangerous' `URLSafeTimedSerializer` (salt `sora-bot gallery link`) over the
  `gallery_secret` kept in the store's meta table, so every replica mints and reads the same
  links. It is valid for GALLERY_LINK_MINUTES after it was signed (`max_age`), never longer;
  it is signed as of CLOCK_SKEW seconds ago, so replicas' clocks may differ by that much.
- It carries who the link is for — platform, workspace, user id, display name — and the one
  platform fact the chat event vouched for (`workspace_admin`). Whether that person may see
  the admin pages is not in the token: the service decides it (bot/domain/permissions.py) on
  every page, from the fact and ADMIN_USER_IDS as they are then.
- A random `link_id` makes each link single-use: opening it records the id (gallery_links);
  a second opening is refused (bot/gallery/routes.py).
- The link needs PUBLIC_BASE_URL: without it `gallery_link_for` raises ConfigError in words.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from bot.domain.errors import ConfigError
from bot.domain.models import Requester

if TYPE_CHECKING:
    from bot.infra.config import Settings
    from bot.infra.store import Store

SECRET_NAME = "gallery_secret"
LINK_SALT = "sora-bot gallery link"
OPEN_PATH = "/gallery/open"
ASK_AGAIN = "(/sora gallery in Slack, /sora-gallery in Discord)"
NO_BASE_URL = (
    "The gallery needs PUBLIC_BASE_URL: the bot's public https address, where the gallery's "
    "pages are served. Ask the bot's operator to set it (see the README, 'The gallery')."
)

#: The clock links are signed and checked by (tests move it).
clock = time.time
#: Seconds of clock difference between replicas a link tolerates (taken off its life).
CLOCK_SKEW = 5


class _Signer(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(clock())


class _MintingSigner(TimestampSigner):
    """Signs as of CLOCK_SKEW seconds ago, so a replica whose clock is a little behind the one
    that made the link does not find it "from the future" (itsdangerous refuses those)."""

    def get_timestamp(self) -> int:
        return int(clock()) - CLOCK_SKEW


class LinkRefused(Exception):
    """A link that cannot be opened; `str()` says why, in words for the person holding it."""


@dataclass(frozen=True)
class LinkClaims:
    link_id: str
    platform: str
    workspace: str
    user: str
    name: str
    workspace_admin: bool

    @property
    def requester(self) -> Requester:
        return Requester(
            platform=self.platform,
            workspace=self.workspace,
            user=self.user,
            display_name=self.name or None,
            workspace_admin=self.workspace_admin,
        )


class GalleryLinks:
    def __init__(self, secret: str, base_url: str, minutes: int) -> None:
        self._tokens = URLSafeTimedSerializer(secret, salt=LINK_SALT, signer=_Signer)
        self._minting = URLSafeTimedSerializer(secret, salt=LINK_SALT, signer=_MintingSigner)
        self.base_url = base_url.rstrip("/")
        self.max_age = minutes * 60

    def mint(self, requester: Requester) -> str:
        claims: dict[str, Any] = {
            "l": secrets.token_urlsafe(12),
            "p": requester.platform,
            "w": requester.workspace,
            "u": requester.user,
            "n": (requester.display_name or "")[:80],
            "a": bool(requester.workspace_admin),
        }
        return f"{self.base_url}{OPEN_PATH}?t={self._minting.dumps(claims)}"

    def read(self, token: str) -> LinkClaims:
        try:
            data = self._tokens.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise LinkRefused(
                f"This gallery link has expired: links last {self.max_age // 60} minutes. "
                f"Ask for a new one in chat {ASK_AGAIN}."
            ) from None
        except BadData:
            raise LinkRefused(
                "This gallery link is not valid (it was changed or cut short). Ask for a new "
                f"one in chat {ASK_AGAIN}."
            ) from None
        try:
            return LinkClaims(
                link_id=_text(data["l"]),
                platform=_text(data["p"]),
                workspace=_text(data["w"]),
                user=_text(data["u"]),
                name=str(data.get("n") or ""),
                workspace_admin=data.get("a") is True,
            )
        except (KeyError, TypeError, ValueError):
            raise LinkRefused(
                f"This gallery link is not valid. Ask for a new one in chat {ASK_AGAIN}."
            ) from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a claim is missing")
    return value


async def links_for(settings: Settings, store: Store) -> GalleryLinks:
    """The link signer of this deployment (ConfigError without PUBLIC_BASE_URL)."""
    if not settings.public_base_url:
        raise ConfigError(NO_BASE_URL)
    secret = await store.meta_secret(SECRET_NAME)
    return GalleryLinks(secret, settings.public_base_url, settings.gallery_link_minutes)


async def gallery_link_for(settings: Settings, store: Store, requester: Requester) -> str:
    """A new single-use link to the gallery for `requester`."""
    return (await links_for(settings, store)).mint(requester)
