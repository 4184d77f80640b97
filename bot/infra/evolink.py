"""The EvoLink HTTP client: submit a video task, follow it, read the balance, fetch the result.

Invariants:
- One `httpx.AsyncClient` per `EvoLinkClient` (connect 10 s, read 60 s by default).
- The API key goes only to EvoLink's API routes, as `Authorization: Bearer …`; result
  downloads (CDN links) are fetched without it. No error message, log line or repr contains it.
- Retries (exponential backoff with jitter, at most `max_attempts` attempts in all) happen only
  for failures that may pass unchanged: 429 (after `Retry-After` when given), 500, 502, 503,
  504, network errors (`httpx.TransportError`: timeouts, refused and reset connections) and a
  2xx whose body is not the JSON we expect. 500 is retried on submit too: the same
  `Idempotency-Key` (the job id) goes with every attempt, so a retried submit can never make a
  second task. 400/401/402/403/404/413 are never retried. A batch read (`get_tasks`,
  bot/infra/task_batch.py) is retried the same way, but an answer that is JSON of a shape it
  cannot read is not: that, or JSON it still cannot parse after the last attempt, makes it
  fall back to single reads, which follow these rules.
- Downloads stream to `<dest>.part` and are renamed only when complete, so `dest` exists only
  whole; memory does not grow with the file. A 200 whose Content-Type says it is a document
  (an error page, JSON) rather than a video is never saved as the video: it is retried like a
  malformed answer.
- Credits are `Decimal`: JSON numbers are parsed as `Decimal`, never through float.
- Callers branch on error types, never on status numbers (bot/domain/errors.py): a task id EvoLink
  does not know raises `TaskNotFound`, a result link that no longer serves raises
  `ResultExpired`, and a task that ended without a video raises `TaskFailed` from
  `TaskSnapshot.raise_for_failure`, its code explained by bot/domain/task_errors.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from bot.domain.catalog import Catalog
from bot.domain.errors import (
    ProviderError,
    ProviderHTTPError,
    ResultExpired,
    TaskNotFound,
)
from bot.domain.models import VideoRequest
from bot.infra.task_batch import BatchReads, BatchUnavailable, parse_batch
from bot.infra.task_fields import decimal_of
from bot.infra.task_snapshot import AccountCredits, TaskSnapshot

__all__ = ["AccountCredits", "EvoLinkClient", "TaskSnapshot"]

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0  # a longer Retry-After is handed to the caller instead of waited out


def _http_error(response: httpx.Response, what: str, kind: str = "") -> ProviderHTTPError:
    """An error status in plain words; EvoLink's envelope gives the code. `kind` "task"
    (`GET /v1/tasks/{id}`) and "download" (a result link) get their typed subclasses."""
    status = response.status_code
    code: str | None = None
    detail = ""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        envelope = response.json().get("error")
        if isinstance(envelope, dict):
            code = None if envelope.get("code") is None else str(envelope["code"])
            detail = str(envelope.get("message") or "")[:300]
    retry_after: float | None = None
    with contextlib.suppress(ValueError):
        retry_after = max(0.0, float(response.headers.get("Retry-After", "")))
    messages = {
        400: f"EvoLink refused the request{': ' + detail if detail else ''}",
        401: "the EvoLink API key was rejected — check EVOLINK_API_KEY",
        402: "the EvoLink account is out of credits — top it up on evolink.ai",
        403: f"EvoLink refused access{': ' + detail if detail else ''}",
        404: f"EvoLink could not find the {what}",
        413: "the request was too large for EvoLink (is an image over 10 MB?)",
        429: "EvoLink is receiving too many requests from this bot — try again shortly",
    }
    message = messages.get(status) or (
        f"the video service had a problem (HTTP {status}) — try again"
        if status >= 500
        else f"EvoLink answered HTTP {status}{': ' + detail if detail else ''}"
    )
    error_type = ProviderHTTPError
    if kind == "task" and status in (400, 404) and code in ("invalid_task_id", "not_found", None):
        error_type = TaskNotFound
    elif kind == "download" and status in (403, 404, 410):
        error_type = ResultExpired
    return error_type(
        message,
        code=code,
        status=status,
        retryable=status in RETRYABLE_STATUSES,
        retry_after=retry_after,
    )


class _Malformed(Exception):
    """A 2xx whose body was not what the API promises (retried like a network error)."""


class _Unreadable(Exception):
    """A 2xx body not read, and not retried (`_call(lenient=False)`)."""


class EvoLinkClient:
    """Async client for EvoLink's unified video task API. Use `async with` or `aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | None = None,
        max_attempts: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # An empty key sends no header (EvoLink answers 401) rather than an illegal "Bearer ".
        self._auth = {"Authorization": f"Bearer {api_key.strip()}"} if api_key.strip() else {}
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.stats: Counter[str] = Counter()
        #: `get_tasks`: batch reads while EvoLink serves them, else single reads.
        self.batch = BatchReads(self._read_batch, self._read_known)
        #: Model → the request field its audio switch goes in: the packaged catalog's until
        #: `use_catalog` gives the operator's; a model in neither gets `generate_audio`.
        self._audio_fields: dict[str, str] = dict(_packaged_audio_fields())
        self._http = httpx.AsyncClient(
            timeout=timeout or httpx.Timeout(60.0, connect=10.0),
            transport=transport,
            headers={"User-Agent": "sora-bot"},
            follow_redirects=True,
        )

    def use_catalog(self, catalog: Catalog) -> None:
        """Send each model's options in its own field names (Kling's audio is `sound`)."""
        self._audio_fields = {spec.name: spec.audio_field for spec in catalog.models}

    def __repr__(self) -> str:  # never the key
        return f"EvoLinkClient({self.base_url!r})"

    async def __aenter__(self) -> EvoLinkClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- API ---------------------------------------------------------------------------------

    async def submit(
        self, job_id: str, request: VideoRequest, callback_url: str | None = None
    ) -> TaskSnapshot:
        """Create the task for a job. Retries carry the same Idempotency-Key (the job id)."""
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "aspect_ratio": request.aspect_ratio,
            "duration": request.duration,
        }
        if request.image_urls:
            body["image_urls"] = request.image_urls
        if request.remove_watermark is not None:
            body["remove_watermark"] = request.remove_watermark
        if request.resize_mode:
            body["resize_mode"] = request.resize_mode
        if request.quality is not None:
            body["quality"] = request.quality
        if request.audio is not None:
            field = self._audio_fields.get(request.model, "generate_audio")
            body[field] = (
                request.audio if field == "generate_audio" else ("on" if request.audio else "off")
            )
        if request.base_video_task_id:
            body["base_video_task_id"] = request.base_video_task_id
        if callback_url:
            body["callback_url"] = callback_url
        return await self._call(
            "submit",
            "POST",
            "/v1/videos/generations",
            TaskSnapshot.from_api,
            json=body,
            headers={"Idempotency-Key": job_id},
        )

    async def pricing_rules(self) -> dict[str, Any]:
        """EvoLink's public price list, `GET /v1/catalog/pricing-rules?view=full` (the JSON
        object as served; bot.services.prices parses and keeps it)."""

        def parse(data: Any) -> dict[str, Any]:
            if not isinstance(data, dict) or not isinstance(data.get("models"), list):
                raise ValueError("the price list has no models list")
            return data

        return await self._call("pricing", "GET", "/v1/catalog/pricing-rules?view=full", parse)

    async def get_task(self, task_id: str) -> TaskSnapshot:
        return await self._call("task", "GET", f"/v1/tasks/{task_id}", TaskSnapshot.from_api)

    async def get_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskSnapshot]:
        """Many tasks by id; an id EvoLink does not know is absent. `POST /v1/tasks/batch` in
        chunks of at most 50, else (no such route, or an answer it cannot read) single reads
        from then on: bot/infra/task_batch.py. Errors are a single read's."""
        return await self.batch.read(task_ids)

    async def _read_batch(self, task_ids: list[str]) -> list[TaskSnapshot]:
        body = {"task_ids": task_ids}
        try:
            return await self._call(
                "batch", "POST", "/v1/tasks/batch", parse_batch, json=body, lenient=False
            )
        except _Unreadable as exc:
            raise BatchUnavailable(f"an answer it could not read: {exc}", remember=True) from None
        except ProviderHTTPError as exc:
            if exc.status in (400, 404, 405, 501):
                why = f"HTTP {exc.status}"
                raise BatchUnavailable(why, remember=exc.status != 400) from None
            raise
        except ProviderError as exc:
            if isinstance(exc.__cause__, _Malformed):  # not JSON, attempt after attempt
                raise BatchUnavailable("answers that are not JSON", remember=True) from None
            raise

    async def _read_known(self, task_id: str) -> TaskSnapshot | None:
        try:
            return await self.get_task(task_id)
        except TaskNotFound:
            return None

    async def credits(self) -> AccountCredits:
        def parse(data: Any) -> AccountCredits:
            token = data["data"]["token"]
            return AccountCredits(
                remaining=decimal_of(token.get("remaining_credits")),
                unlimited=bool(token.get("unlimited_credits")),
                used=decimal_of(token.get("used_credits")),
            )

        return await self._call("credits", "GET", "/v1/credits", parse)

    async def download(
        self, url: str, dest: Path, *, chunk_size: int = 1 << 16, max_bytes: int | None = None
    ) -> int:
        """Stream a result link to `dest`; returns its size. No API key is sent with it."""
        part = dest.with_suffix(dest.suffix + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.max_attempts + 1):
            self.stats["download"] += 1
            try:
                async with self._http.stream("GET", url) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise _http_error(response, "video (the link may have expired)", "download")
                    if _is_document(response.headers.get("Content-Type", "")):
                        raise _Malformed("a document where the video should be")
                    written = 0
                    with part.open("wb") as out:  # small sync writes: cheaper than a thread hop
                        async for chunk in response.aiter_bytes(chunk_size):
                            written += len(chunk)
                            if max_bytes is not None and written > max_bytes:
                                raise ProviderError(
                                    f"the video is larger than {max_bytes} bytes; not downloaded"
                                )
                            out.write(chunk)
                part.replace(dest)
                return written
            except (httpx.TransportError, ProviderHTTPError, _Malformed) as exc:
                part.unlink(missing_ok=True)
                await self._pause_or_raise(exc, attempt, "the video download")
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        raise AssertionError("unreachable")  # _pause_or_raise raises on the last attempt

    # ---- plumbing --------------------------------------------------------------------------

    async def _call(
        self,
        kind: str,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        lenient: bool = True,
    ) -> T:
        """One API request with the retries; `lenient=False`: a 2xx JSON body `parse` cannot
        read raises `_Unreadable` at once instead of being retried (JSON that does not parse
        is still retried)."""
        for attempt in range(1, self.max_attempts + 1):
            self.stats[kind] += 1
            try:
                response = await self._http.request(
                    method,
                    self.base_url + path,
                    json=json,
                    headers={**self._auth, **(headers or {})},
                )
                if not response.is_success:
                    raise _http_error(response, "task" if kind == "task" else "resource", kind)
                try:
                    data = _loads(response.content)
                except ValueError as exc:
                    raise _Malformed(str(exc)) from None
                try:
                    return parse(data)
                except (ValueError, KeyError, TypeError) as exc:
                    if not lenient:
                        raise _Unreadable(str(exc)) from None
                    raise _Malformed(str(exc)) from None
            except (httpx.TransportError, ProviderHTTPError, _Malformed) as exc:
                await self._pause_or_raise(exc, attempt, "EvoLink")
        raise AssertionError("unreachable")

    async def _pause_or_raise(self, exc: Exception, attempt: int, what: str) -> None:
        """Sleep before the next attempt, or raise the failure as a ProviderError."""
        error: ProviderError
        if isinstance(exc, ProviderHTTPError):
            self.stats[f"error:{exc.status}"] += 1
            error = exc
        elif isinstance(exc, _Malformed):
            self.stats["error:malformed"] += 1
            error = ProviderError(
                f"{what} sent an answer we could not read — try again", retryable=True
            )
        elif isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
            # Our own request is unsendable (a bad URL or header): it would fail again.
            self.stats["error:request"] += 1
            error = ProviderError(f"could not send the request to {what} ({exc})")
        else:
            self.stats["error:network"] += 1
            error = ProviderError(
                f"could not reach {what} ({type(exc).__name__}) — try again", retryable=True
            )
        delay = min(self.max_backoff, self.backoff_base * 2 ** (attempt - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"
        if error.retry_after is not None:
            delay = error.retry_after
        if not error.retryable or attempt >= self.max_attempts or delay > MAX_RETRY_AFTER:
            raise error from (None if error is exc else exc)
        await asyncio.sleep(delay)


@functools.cache
def _packaged_audio_fields() -> dict[str, str]:
    return {spec.name: spec.audio_field for spec in Catalog.load().models}


def _is_document(content_type: str) -> bool:
    """True for media types a video link never legitimately answers with (CDNs serve
    video/*, application/octet-stream or nothing at all)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return (
        kind.startswith("text/")
        or kind in ("application/json", "application/xml", "application/xhtml+xml")
        or kind.endswith(("+json", "+xml"))
    )


def _loads(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal)
