"""The gallery's routes, a sub-application at /gallery of the bot's one HTTP server.

    GET  /gallery/open?t=TOKEN     a link from chat: used once, starts a session, → /gallery/
    GET  /gallery/                 the workspace's videos (filters person, model, q; page)
    GET  /gallery/v/{job}          one video: player, prompt, options, download, chat link
    GET  /gallery/v/{job}/file     the MP4 (HTTP ranges: 206 + Content-Range)
    GET  /gallery/v/{job}/download the MP4 as an attachment
    GET  /gallery/v/{job}/poster   its poster frame (JPEG; a placeholder when none)
    POST /gallery/logout           ends the session
    /gallery/admin…                the admin dashboard (bot/gallery/admin.py)
    /gallery/static/…              the one CSS file and images, served by the bot (no CDN)

Invariants:
- Every page but /open needs a session (bot/gallery/session.py); without one it is a 401 page
  saying how to get a link. The session's person sees only their workspace (bot/gallery/
  archive.py); admin pages ask the service (`may_administer`) on every request.
- A link opens once: the first opening records its id (gallery_links) before the session is
  started; a replayed, tampered or expired link is a 4xx page in words, never a 500. (Opened
  again in the browser whose session it started, for the same person, it goes to the gallery.) Link
  preview robots (Slackbot, Discordbot…) get a page that uses nothing, so a preview cannot
  spend the person's link.
- Every POST checks the session's CSRF token first (403, nothing changed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware

from bot.domain.models import fmt_credits
from bot.gallery import admin, keys, present
from bot.gallery.archive import Archive
from bot.gallery.guard import guard, message_page
from bot.gallery.links import ASK_AGAIN, SECRET_NAME, LinkRefused, links_for
from bot.gallery.pages import archive_of, render, require_csrf, require_viewer
from bot.gallery.session import LateStorage, end, start, viewer
from bot.infra.posters import Posters
from bot.infra.store.gallery_rows import GalleryFilter

if TYPE_CHECKING:
    from bot.app import Core

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PREVIEW_AGENTS = ("slackbot", "discordbot", "facebookexternalhit", "twitterbot", "telegrambot")
USED = (
    "This gallery link was already used: each link opens once. Ask for a new one in chat "
    f"{ASK_AGAIN}."
)
PREVIEW = "This is a private, single-use gallery link. Open it in your browser."
NO_LINKS = "The gallery is not set up here: PUBLIC_BASE_URL is not set."


# -- opening a link --------------------------------------------------------------------------


async def open_link(request: web.Request) -> web.StreamResponse:
    agent = request.headers.get("User-Agent", "").lower()
    if any(robot in agent for robot in PREVIEW_AGENTS):
        return await message_page(request, 200, PREVIEW, "Sora gallery")
    links = request.config_dict[keys.LINKS]
    if links is None:
        return await message_page(request, 503, NO_LINKS)
    try:
        claims = links.read(request.query.get("t", ""))
    except LinkRefused as refused:
        return await message_page(request, 400, str(refused), "This link cannot be opened")
    life = dt.timedelta(seconds=links.max_age)
    if not await archive_of(request).use_link(claims.link_id, life):
        already = await viewer(request)
        if already is not None and already.requester.key == claims.requester.key:
            raise web.HTTPSeeOther("/gallery/")  # opened twice in the browser it signed in
        return await message_page(request, 410, USED)
    await start(request, claims)
    log.info("gallery session started for %s:%s", claims.platform, claims.workspace)
    raise web.HTTPSeeOther("/gallery/")


async def logout(request: web.Request) -> web.StreamResponse:
    await require_csrf(request)
    await end(request)
    return await message_page(request, 200, "You are signed out of the gallery.", "Signed out")


# -- the gallery -----------------------------------------------------------------------------


def _page_number(text: str | None) -> int:
    try:
        return min(max(int(text or "1"), 1), 10_000)
    except ValueError:
        return 1


async def index(request: web.Request) -> web.StreamResponse:
    seen = await require_viewer(request)
    archive = archive_of(request)
    query = request.query
    narrow = GalleryFilter(
        user=(query.get("person") or "")[:64] or None,
        model=(query.get("model") or "")[:64] or None,
        text=(query.get("q") or "").strip()[:200] or None,
    )
    page = await archive.page(seen, narrow, _page_number(query.get("page")))
    people, models = await archive.choices(seen)
    own = await archive.own_unfinished(seen)
    keep = {k: v for k, v in (("person", narrow.user), ("model", narrow.model)) if v}
    if narrow.text:
        keep["q"] = narrow.text
    return await render(
        request,
        "index.html",
        seen,
        page=page,
        narrow=narrow,
        people=people,
        models=models,
        own=own,
        keep=keep,
        expired={j.id for j, path in await archive.files_of(page.jobs) if path is None},
    )


async def video_page(request: web.Request) -> web.StreamResponse:
    seen = await require_viewer(request)
    archive = archive_of(request)
    job = await archive.job(seen, request.match_info["job"])
    return await render(
        request,
        "video.html",
        seen,
        job=job,
        playable=(await archive.files_of([job]))[0][1] is not None,
        place=present.chat_place(job),
        options=present.options_of(job),
    )


async def _file_of(request: web.Request) -> Path:
    seen = await require_viewer(request)
    archive = archive_of(request)
    job = await archive.job(seen, request.match_info["job"])
    path = (await archive.files_of([job]))[0][1]
    if path is None:
        raise web.HTTPNotFound(
            text="This video has expired: it is older than the bot keeps videos "
            "(MEDIA_RETENTION_DAYS), or its file is gone."
        )
    return path


async def video_file(request: web.Request) -> web.StreamResponse:
    path = await _file_of(request)
    return web.FileResponse(
        path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, max-age=3600"}
    )


async def download(request: web.Request) -> web.StreamResponse:
    path = await _file_of(request)
    name = f"sora-{request.match_info['job']}.mp4"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/mp4",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


async def poster(request: web.Request) -> web.StreamResponse:
    seen = await require_viewer(request)
    archive = archive_of(request)
    job = await archive.job(seen, request.match_info["job"])
    video = (await archive.files_of([job]))[0][1]
    made = None
    if video is not None:
        made = await request.config_dict[keys.POSTERS].poster(video)
        made = await asyncio.to_thread(archive.inside, made) if made is not None else None
    if made is None:
        return web.FileResponse(
            HERE / "static" / "placeholder.svg",
            headers={"Content-Type": "image/svg+xml", "Cache-Control": "private, max-age=300"},
        )
    return web.FileResponse(
        made, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400"}
    )


# -- mounting --------------------------------------------------------------------------------


def mount_gallery(app: web.Application, core: Core) -> None:
    """Add the gallery to the bot's web app (one call, from bot/web.py)."""
    settings = core.settings
    secure = (settings.public_base_url or "").startswith("https://")
    storage = LateStorage(hours=settings.gallery_session_hours, secure=secure)
    gallery = web.Application(middlewares=[session_middleware(storage), guard])
    gallery[keys.CORE] = core
    gallery[keys.SESSIONS] = storage
    gallery[keys.ARCHIVE] = Archive(core.store, core.media.media_dir, settings.media_retention_days)
    gallery[keys.POSTERS] = Posters()
    gallery[keys.LINKS] = None
    aiohttp_jinja2.setup(
        gallery,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        filters={"credits": fmt_credits},
    )

    async def load_secret(_app: web.Application) -> None:
        storage.set_secret(await core.store.meta_secret(SECRET_NAME))
        if settings.public_base_url:
            gallery[keys.LINKS] = await links_for(settings, core.store)

    gallery.on_startup.append(load_secret)
    add = gallery.router
    add.add_get("/open", open_link)
    add.add_get("/", index)
    add.add_get("/v/{job}", video_page)
    add.add_get("/v/{job}/file", video_file)
    add.add_get("/v/{job}/download", download)
    add.add_get("/v/{job}/poster", poster)
    add.add_post("/logout", logout)
    admin.add_routes(gallery)
    add.add_static("/static", HERE / "static", name="static", follow_symlinks=False)

    async def to_gallery(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/gallery/")

    app.router.add_get("/gallery", to_gallery)  # before the sub-app, which would answer 404
    app.add_subapp("/gallery", gallery)
