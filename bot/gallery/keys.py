"""The gallery sub-application's state keys (aiohttp `AppKey`s), shared by its modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.app import Core
    from bot.gallery.archive import Archive
    from bot.gallery.links import GalleryLinks
    from bot.gallery.session import LateStorage
    from bot.infra.posters import Posters

CORE: web.AppKey[Core] = web.AppKey("gallery_core")
ARCHIVE: web.AppKey[Archive] = web.AppKey("gallery_archive")
POSTERS: web.AppKey[Posters] = web.AppKey("gallery_posters")
SESSIONS: web.AppKey[LateStorage] = web.AppKey("gallery_sessions")
LINKS: web.AppKey[GalleryLinks | None] = web.AppKey("gallery_links")
