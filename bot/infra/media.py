"""Finished videos on disk and the signed, expiring `/media/{token}` links that serve them.

Invariants:
- Every file served lives directly under `MEDIA_DIR`; a token names one file by its base name,
  so no token can reach outside the directory.
- A token is itsdangerous' `URLSafeSerializer` (HMAC-SHA1 over a derived key, salt
  `sora-bot media`) of `[name, expiry]`; the secret is created once and kept in the database
  (`media_secret`), so links survive restarts and every replica checks them alike. A token is
  valid only with the right signature and before its expiry (explicit, in the payload);
  anything else is "not found". (Links made before this format stopped working at upgrade.)
- Links expire with the retention period: `cleanup` deletes files older than
  `MEDIA_RETENTION_DAYS`, and their links stop working at the same time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

from itsdangerous import BadData, URLSafeSerializer

log = logging.getLogger(__name__)

MEDIA_SALT = "sora-bot media"


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


class MediaHost:
    def __init__(
        self,
        media_dir: Path,
        secret: str,
        public_base_url: str | None,
        retention_days: int,
    ) -> None:
        self.media_dir = media_dir
        self._tokens = URLSafeSerializer(secret, salt=MEDIA_SALT)
        self.public_base_url = public_base_url
        self.retention = dt.timedelta(days=retention_days)
        media_dir.mkdir(parents=True, exist_ok=True)

    def video_path(self, job_id: str) -> Path:
        return self.media_dir / f"{job_id}.mp4"

    # -- tokens ----------------------------------------------------------------------------

    def token_for(self, name: str, expires_at: dt.datetime | None = None) -> str:
        if not _plain_name(name):
            raise ValueError("media names are plain file names")
        expiry = expires_at or (dt.datetime.now(dt.UTC) + self.retention)
        return self._tokens.dumps([name, int(expiry.timestamp())])

    def resolve(self, token: str, *, now: float | None = None) -> Path | None:
        """The file a token names, or None if the token is forged, expired or the file is gone."""
        name = self._name_of(token, now)
        if name is None:
            return None
        path = self.media_dir / name
        return path if path.is_file() else None

    def named(self, token: str, *, now: float | None = None) -> str | None:
        """The file name a valid token carries, whether or not the file is on this disk."""
        return self._name_of(token, now)

    def signed(self, url: str, *, now: float | None = None) -> bool:
        """Is `url` a link this host signed (`url_for`) and that has not expired?

        Such a link names a file in MEDIA_DIR, so it may be handed to EvoLink whatever its
        host (a test's 127.0.0.1); the file may still be on its way (a Slack image)."""
        prefix = f"{self.public_base_url}/media/"
        if self.public_base_url is None or not url.startswith(prefix):
            return False
        return self._name_of(url[len(prefix) :], now) is not None

    def _name_of(self, token: str, now: float | None) -> str | None:
        """The file name a correctly signed, unexpired token carries; None otherwise."""
        try:
            payload = self._tokens.loads(token)
        except BadData:
            return None
        if not (isinstance(payload, list) and len(payload) == 2):
            return None
        name, expiry = payload
        if not isinstance(name, str) or not isinstance(expiry, int) or isinstance(expiry, bool):
            return None
        if (now if now is not None else time.time()) > expiry:
            return None
        return name if _plain_name(name) else None

    def url_for(self, path: Path, expires_at: dt.datetime | None = None) -> str | None:
        """The public link for a file under MEDIA_DIR; None when PUBLIC_BASE_URL is not set."""
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url}/media/{self.token_for(path.name, expires_at)}"

    # -- retention -------------------------------------------------------------------------

    def cleanup(self, *, now: float | None = None) -> int:
        """Delete files older than the retention period; returns how many were removed."""
        cutoff = (now if now is not None else time.time()) - self.retention.total_seconds()
        removed = 0
        for path in self.media_dir.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError as exc:
                log.warning("media clean-up could not remove %s: %s", path.name, exc)
        if removed:
            log.info("media clean-up removed %d file(s)", removed)
        return removed
