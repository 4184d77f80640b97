"""The gallery's middleware: security headers on every answer, and errors as clear pages.

Invariants:
- Every gallery answer (pages, files, errors, redirects) carries Content-Security-Policy
  (`default-src 'self'`: no inline script or style, no other origin), X-Content-Type-Options:
  nosniff, Referrer-Policy: no-referrer (a link's token never leaks in a Referer), and
  X-Frame-Options: DENY; pages are not cached (Cache-Control: no-store).
- A message page keeps the page frame: the signed-in name and Sign out when there is a
  session; without one, no "Gallery" link (it would answer 401), the way to a new link instead.
- An error is a page in words with its own status, never a traceback: a BotError by its type
  (PermissionDenied 403, NotFound 404, InputError 400, JobStateError 409, ConfigError 503),
  an HTTP error as itself, anything else 500 "something went wrong" (logged with traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from bot.domain.errors import (
    BotError,
    ConfigError,
    InputError,
    JobStateError,
    NotFound,
    PermissionDenied,
)
from bot.gallery import keys
from bot.gallery.session import viewer

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
TITLES = {
    400: "That did not work",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Already done",
    410: "Link already used",
    500: "Something went wrong",
    503: "Not available",
}
STATUS_OF: tuple[tuple[type[BotError], int], ...] = (
    (PermissionDenied, 403),
    (NotFound, 404),
    (InputError, 400),
    (JobStateError, 409),
    (ConfigError, 503),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def message_page(
    request: web.Request, status: int, text: str, title: str = ""
) -> web.Response:
    """A page with one message (an error, a refused link), in the same frame as every page:
    the signed-in person and Sign out when the browser has a session, else no gallery link
    (which would only answer 401) but how to get one in chat."""
    context: dict[str, object] = {
        "title": title or TITLES.get(status, "Gallery"),
        "text": text,
        "viewer": None,
        "flash": None,
    }
    try:
        seen = await viewer(request)
    except Exception:  # a broken session must not turn an error page into a 500
        log.warning("gallery page %s: the session could not be read", request.path)
        seen = None
    if seen is not None:
        core = request.config_dict[keys.CORE]
        context.update(
            viewer=seen, csrf=seen.csrf, is_admin=core.service.may_administer(seen.requester)
        )
    return aiohttp_jinja2.render_template("message.html", request, context, status=status)


def _add_headers(response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        response.headers["Cache-Control"] = "no-store"


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            _add_headers(exc)
            raise
        text = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
        response = await message_page(request, exc.status, text or exc.reason)
    except BotError as err:
        status = next((code for kind, code in STATUS_OF if isinstance(err, kind)), 400)
        response = await message_page(request, status, str(err))
    except Exception:
        log.exception("gallery page %s failed", request.path)
        response = await message_page(
            request, 500, "The gallery could not show this page. Try again in a moment."
        )
    _add_headers(response)
    return response
