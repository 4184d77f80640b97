"""The one HTTP server: health, EvoLink callbacks, hosted media, the gallery (Slack mounts
/slack/events).

Invariants:
- `POST /evolink/callback/{secret}`: a wrong secret is 404 (indistinguishable from no route);
  the body is only a hint naming a task — the tracker re-reads the task from EvoLink before
  acting, so a forged body can at most cause one extra status read of a job we already follow.
- `GET /media/{token}`: only a valid, unexpired, correctly signed token serves a file;
  anything else is 404. A valid token whose file is not on this replica's disk is a 404 text
  page saying so (`MEDIA_ELSEWHERE`: MEDIA_DIR must be a volume every replica shares).
- `GET /healthz` answers 200 once the store is open, naming this replica, the job leases it
  holds and the database (engine, reachable); 503 while the database does not answer.
- `/gallery/…` is the web gallery and admin dashboard (bot/gallery/, mounted by one call:
  its own middleware — session, CSRF, security headers — applies to its routes only).
- `GET /metrics` is the Prometheus text format (bot/services/metrics.py), read from the store
  at scrape time, behind `Authorization: Bearer <METRICS_TOKEN>` when that is set. A public
  server (PUBLIC_BASE_URL not on localhost) without METRICS_TOKEN answers it 404, and says at
  start-up how to open it (`Settings.metrics_closed`). It holds counts and credit totals,
  never a secret, a user id or a prompt.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from bot.gallery.routes import mount_gallery
from bot.infra.logs import job_context
from bot.services.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from bot.app import Core

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 256 * 1024
MEDIA_ELSEWHERE = (
    "This video is not on this server's disk. The bot runs as several replicas and another "
    "replica saved it: MEDIA_DIR must be one volume shared by every replica (or the file was "
    "deleted). Ask for the video again, or tell the bot's operator.\n"
)
METRICS_CLOSED = (
    "GET /metrics is closed (404): the server is public (PUBLIC_BASE_URL) and METRICS_TOKEN is "
    "not set. To scrape it, set METRICS_TOKEN and send 'Authorization: Bearer <token>'."
)


def build_web_app(core: Core) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)

    async def healthz(_request: web.Request) -> web.Response:
        reachable = await core.store.reachable()
        return web.json_response(
            {
                "status": "ok" if reachable else "database unreachable",
                "jobs_in_flight": core.tracker.in_flight,
                "platforms": sorted(core.tracker.ports),
                "schema": core.store.schema_version,
                "replica": core.settings.replica_id,
                "leases": len(core.tracker.leases.held),
                "database": {"engine": core.store.engine, "reachable": reachable},
            },
            status=200 if reachable else 503,
        )

    async def evolink_callback(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.match_info["secret"], core.callback_secret):
            raise web.HTTPNotFound()
        body = await request.content.read(MAX_CALLBACK_BYTES)
        task_id = _task_id_of(body)
        if task_id is None:
            return web.json_response({"ok": False, "error": "no task id"}, status=400)
        job = await core.book.job_for_task(task_id)
        if job is not None:
            with job_context(job.id):
                log.info("job %s: callback for task %s, re-reading it", job.id, task_id)
            core.tracker.wake(job.id)
        return web.json_response({"ok": True})

    async def media(request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if core.media.named(token) is None:
            raise web.HTTPNotFound()  # forged or expired: nothing to say
        path = core.media.resolve(token)
        if path is None:
            log.warning("a /media link names a file not in MEDIA_DIR (shared by every replica?)")
            return web.Response(status=404, text=MEDIA_ELSEWHERE, content_type="text/plain")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "video/mp4"
                if path.suffix == ".mp4"
                else "application/octet-stream",
                "Cache-Control": "private, max-age=3600",
                "X-Content-Type-Options": "nosniff",
            },
        )

    metrics_closed = core.settings.metrics_closed
    if metrics_closed:
        log.warning(METRICS_CLOSED)

    async def metrics(request: web.Request) -> web.Response:
        if metrics_closed:
            raise web.HTTPNotFound()
        token = core.settings.metrics_token
        if token is not None:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(
                sent.encode(), f"Bearer {token.get_secret_value()}".encode()
            ):
                raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
        text = await core.metrics.render(core.book, core.tracker, core.evolink.stats)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/evolink/callback/{secret}", evolink_callback)
    app.router.add_get("/media/{token}", media)
    mount_gallery(app, core)
    return app


def _task_id_of(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    task_id = data.get("id") or data.get("task_id")
    if isinstance(task_id, str) and 0 < len(task_id) <= 200:
        return task_id
    return None
