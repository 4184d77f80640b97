"""What every gallery page shares: the viewer's session, the CSRF check, the page frame.

Invariants:
- `require_viewer` is the first call of every page but /open: no session, no page (401).
- `require_csrf` is the first call of every POST handler: the form's `csrf` must be the
  session's token, else 403 and nothing read or changed.
- Whether the viewer sees admin links is the service's answer (`may_administer`), per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web

from bot.gallery import keys, present
from bot.gallery.archive import Archive
from bot.gallery.session import Viewer, csrf_ok, take_flash, viewer

if TYPE_CHECKING:
    from bot.app import Core

NO_SESSION = (
    "You are not signed in to the gallery (or your session ended). Ask for a link in chat: "
    "/sora gallery in Slack, /sora-gallery in Discord, /gallery in the console."
)
BAD_CSRF = (
    "This form is out of date or did not come from your gallery page (CSRF check). Nothing "
    "was changed: reload the page and try again."
)


def core_of(request: web.Request) -> Core:
    return request.config_dict[keys.CORE]


def archive_of(request: web.Request) -> Archive:
    return request.config_dict[keys.ARCHIVE]


async def require_viewer(request: web.Request) -> Viewer:
    seen = await viewer(request)
    if seen is None:
        raise web.HTTPUnauthorized(text=NO_SESSION)
    return seen


async def require_csrf(request: web.Request) -> tuple[Viewer, Any]:
    """The viewer and the POSTed form, once its CSRF token matched the session's."""
    seen = await viewer(request)
    form = await request.post()
    if seen is None or not csrf_ok(seen, form.get("csrf")):
        raise web.HTTPForbidden(text=BAD_CSRF)
    return seen, form


async def render(request: web.Request, name: str, seen: Viewer, **values: Any) -> web.Response:
    """A page with the navigation's facts (is the viewer an admin?) and the flash note."""
    core = core_of(request)
    context = {
        "viewer": seen,
        "csrf": seen.csrf,
        "is_admin": core.service.may_administer(seen.requester),
        "flash": await take_flash(request),
        "present": present,
        **values,
    }
    return aiohttp_jinja2.render_template(name, request, context)
