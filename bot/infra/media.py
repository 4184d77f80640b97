"""Finished videos on disk and the signed, expiring `/media/{token}` links that serve them.

Invariants:
- Every file served lives directly under `MEDIA_DIR`; a token names one file by its base name,
  so no token can reach outside the directory.
- A token is `base64url(name|expiry)` + "." + `base64url(HMAC-SHA256(secret, payload))`; the
  secret is created once and kept in the database, so links survive restarts. A token is valid
  only with the right signature and before its expiry; anything else is "not found".
- Links expire with the retention period: `cleanup` deletes files older than
  `MEDIA_RETENTION_DAYS`, and their links stop working at the same time.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class MediaHost:
    def __init__(
        self,
        media_dir: Path,
        secret: str,
        public_base_url: str | None,
        retention_days: int,
    ) -> None:
        self.media_dir = media_dir
        self._key = secret.encode("utf-8")
        self.public_base_url = public_base_url
        self.retention = dt.timedelta(days=retention_days)
        media_dir.mkdir(parents=True, exist_ok=True)

    def video_path(self, job_id: str) -> Path:
        return self.media_dir / f"{job_id}.mp4"

    # -- tokens ----------------------------------------------------------------------------

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def token_for(self, name: str, expires_at: dt.datetime | None = None) -> str:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError("media names are plain file names")
        expiry = expires_at or (dt.datetime.now(dt.UTC) + self.retention)
        payload = f"{name}|{int(expiry.timestamp())}".encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

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
            payload_text, signature_text = token.split(".", 1)
            payload = _unb64(payload_text)
            signature = _unb64(signature_text)
        except (ValueError, binascii.Error):
            return None
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            name, expiry_text = payload.decode("utf-8").rsplit("|", 1)
            expiry = int(expiry_text)
        except (UnicodeDecodeError, ValueError):
            return None
        if (now if now is not None else time.time()) > expiry:
            return None
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        return name

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
