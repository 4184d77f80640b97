"""What the gallery reads: a workspace's videos and their files, scoped to the viewer.

Invariants:
- Every read is of the viewer's (platform, workspace): another workspace's job is "not found"
  (404), exactly as a job that does not exist. Of the viewer's workspace, everyone's delivered
  videos are visible; other statuses only to the person who asked. A Discord direct message
  (workspace ``dm``) is nobody's workspace — every DM user shares that name — so there the
  viewer sees only their own videos.
- A file is served only from inside MEDIA_DIR: a job's `media_path` is resolved (symlinks
  followed) and must be a file under the resolved MEDIA_DIR (`Path.is_relative_to`), else the
  video counts as gone. A delivered video past MEDIA_RETENTION_DAYS, or whose file is gone,
  is "expired": its page says so instead of showing a player that cannot play.
- Reads only: nothing here writes a job (the job book does); links are recorded as used
  through gallery_rows.use_link.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from bot.domain.errors import NotFound
from bot.domain.models import Job, JobStatus
from bot.gallery.session import Viewer
from bot.infra.store import Store, job_rows
from bot.infra.store import gallery_rows as sql
from bot.infra.store.gallery_rows import GalleryFilter

PAGE_SIZE = 24
#: Workspace names that are shared by people who are not a team (Discord DMs): private there.
PERSONAL_WORKSPACES = frozenset({"dm"})
OWN_JOBS_SHOWN = 20
NOT_HERE = "There is no such video in your workspace's gallery."


@dataclass(frozen=True)
class GalleryPage:
    jobs: list[Job]
    page: int
    has_next: bool


class Archive:
    def __init__(self, store: Store, media_dir: Path, retention_days: int) -> None:
        self.store = store
        self.media_dir = media_dir
        self.retention = dt.timedelta(days=retention_days)

    async def page(self, viewer: Viewer, narrow: GalleryFilter, page: int) -> GalleryPage:
        page = max(1, page)
        if viewer.workspace in PERSONAL_WORKSPACES:
            narrow = replace(narrow, user=viewer.user)
        async with self.store.reading() as tx:
            found = await sql.delivered(
                tx,
                viewer.platform,
                viewer.workspace,
                narrow,
                limit=PAGE_SIZE + 1,
                offset=(page - 1) * PAGE_SIZE,
            )
        return GalleryPage(found[:PAGE_SIZE], page, len(found) > PAGE_SIZE)

    async def own_unfinished(self, viewer: Viewer) -> list[Job]:
        async with self.store.reading() as tx:
            return await sql.own_unfinished(
                tx, viewer.platform, viewer.workspace, viewer.user, limit=OWN_JOBS_SHOWN
            )

    async def choices(self, viewer: Viewer) -> tuple[list[tuple[str, str]], list[str]]:
        """(people, models) of the workspace's delivered videos, for the filters."""
        async with self.store.reading() as tx:
            people = await sql.people(tx, viewer.platform, viewer.workspace)
            models = await sql.models(tx, viewer.platform, viewer.workspace)
        if viewer.workspace in PERSONAL_WORKSPACES:
            people = [(user, name) for user, name in people if user == viewer.user]
            models = []  # (whose models they are would say what others made)
        return people, models

    async def job(self, viewer: Viewer, job_id: str) -> Job:
        """A job the viewer may see, else NotFound (another workspace's included)."""
        async with self.store.reading() as tx:
            job = await job_rows.get(tx, job_id) if len(job_id) <= 64 else None
        if job is None:
            raise NotFound(NOT_HERE)
        who = job.requester
        if (who.platform, who.workspace) != (viewer.platform, viewer.workspace):
            raise NotFound(NOT_HERE)
        mine = who.user == viewer.user
        if not mine and (
            job.status != JobStatus.DELIVERED or viewer.workspace in PERSONAL_WORKSPACES
        ):
            raise NotFound(NOT_HERE)
        return job

    async def files_of(self, jobs: list[Job]) -> list[tuple[Job, Path | None]]:
        """Each job with its video file (`video_file`), looked up off the event loop."""
        return await asyncio.to_thread(lambda: [(job, self.video_file(job)) for job in jobs])

    def video_file(self, job: Job, now: dt.datetime | None = None) -> Path | None:
        """The job's video on this disk, inside MEDIA_DIR and within retention; else None."""
        if job.status != JobStatus.DELIVERED or not job.media_path:
            return None
        finished = job.finished_at or job.created_at
        if (now or dt.datetime.now(dt.UTC)) - finished > self.retention:
            return None
        return self.inside(Path(job.media_path))

    def inside(self, path: Path) -> Path | None:
        """`path` resolved, if it is a file under MEDIA_DIR; None otherwise."""
        try:
            real = path.resolve(strict=True)
            root = self.media_dir.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(root) or real == root or not real.is_file():
            return None
        return real

    async def use_link(self, link_id: str, life: dt.timedelta) -> bool:
        """Record a link as opened; False when it had been opened before."""
        now = dt.datetime.now(dt.UTC)
        async with self.store.transaction() as tx:
            return await sql.use_link(tx, link_id, now, now - life - dt.timedelta(minutes=5))
