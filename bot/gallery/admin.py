"""The admin dashboard: the period's usage, the chart, the team budget, approvals, limits.

    GET  /gallery/admin                       usage per person, team budget and pace, chart,
                                              pending approvals, the limit form
    GET  /gallery/admin/chart.png             bot/services/chart.py's PNG of the same report
    POST /gallery/admin/approvals/{id}        decision=approve|deny (CSRF)
    POST /gallery/admin/limits                user, amount, reason (CSRF)

Invariants:
- Only for whom the service says administers the viewer's workspace (`may_administer`, asked
  on every request): anyone else gets 403 and sees no figure.
- The figures are the usage report's (`service.report`, the same call as the CSV export and
  the chat's report): nothing here sums credits.
- A decision is `service.decide_approval`, the chat buttons' call: one decision counts, and a
  second answers in the words of the first ("already approved by you", or by the decider's
  name as the usage table shows it; their platform:id only when no name is known). A limit is
  `service.set_limit`, audited by the ledger with the admin as actor.
- Every POST checks the CSRF token before anything else (bot/gallery/routes.py
  `require_csrf`), then redirects back (303) with a one-line note.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.domain.errors import BotError, InputError, JobStateError, PermissionDenied
from bot.domain.models import Requester, fmt_credits
from bot.domain.permissions import actor_id
from bot.gallery.pages import core_of, render, require_csrf, require_viewer
from bot.gallery.session import Viewer, flash
from bot.services.chart import chart_pixels, chart_series, describe_chart, render_chart
from bot.services.reports import UsageReport, period_title

NOT_ADMIN = (
    "Only this workspace's budget admins can see the admin pages; your own videos are in the "
    "gallery."
)
BACK = "/gallery/admin"


async def _admin(request: web.Request) -> Viewer:
    seen = await require_viewer(request)
    if not core_of(request).service.may_administer(seen.requester):
        raise PermissionDenied(NOT_ADMIN)
    return seen


async def _report(request: web.Request, seen: Viewer) -> UsageReport:
    service = core_of(request).service
    return await service.report(seen.requester, seen.platform, seen.workspace)


async def dashboard(request: web.Request) -> web.StreamResponse:
    seen = await _admin(request)
    service = core_of(request).service
    report = await _report(request, seen)
    approvals = await service.pending_approvals(seen.requester, seen.platform, seen.workspace)
    team = report.teams[0] if report.teams else None
    return await render(
        request,
        "admin.html",
        seen,
        report=report,
        title=period_title(report),
        totals=report.totals,
        team=team,
        team_pace=report.pace(team.budget) if team is not None else None,
        approvals=approvals,
        chart_text=describe_chart(report),
        chart_size=chart_pixels(report),
        pace_shown=chart_series(report).pace_shown,
    )


async def chart(request: web.Request) -> web.StreamResponse:
    seen = await _admin(request)
    report = await _report(request, seen)
    png = await asyncio.to_thread(render_chart, report)
    return web.Response(
        body=png, content_type="image/png", headers={"Cache-Control": "private, no-store"}
    )


async def decide(request: web.Request) -> web.StreamResponse:
    seen, form = await require_csrf(request)
    await _admin(request)
    choice = form.get("decision")
    if choice not in ("approve", "deny"):
        raise InputError("Choose Approve or Deny.", field="decision")
    approval_id = request.match_info["approval"]
    reason = str(form.get("reason") or "").strip()
    service = core_of(request).service
    try:
        decided = await service.decide_approval(
            approval_id, seen.requester, choice == "approve", reason
        )
    except JobStateError as err:
        await flash(request, await _already(request, seen, approval_id) or str(err))
    except BotError as err:
        await flash(request, str(err))
    else:
        verb = "Approved" if decided.status == "approved" else "Denied"
        who = decided.requester.display_name or decided.requester.user
        await flash(request, f"{verb}: {who}'s request ({fmt_credits(decided.price)} credits).")
    raise web.HTTPSeeOther(BACK)


async def _already(request: web.Request, seen: Viewer, approval_id: str) -> str | None:
    """The words for a request decided before ("already approved by …"): the decider by the
    name the page shows them by ("you", or the usage table's name), not their platform:id;
    None when it was not decided (it expired), so the service's own words stand."""
    service = core_of(request).service
    decided = await service.get_approval(approval_id)
    if decided.status == "pending" or not decided.decided_by:
        return None
    by = decided.decided_by
    if by == actor_id(seen.requester):
        name = "you"
    else:
        report = await _report(request, seen)
        names = {f"{row.platform}:{row.user}": row.name for row in report.rows}
        name = names.get(by, by)
    return f"This request was already {decided.status} by {name}."


async def set_limit(request: web.Request) -> web.StreamResponse:
    seen, form = await require_csrf(request)
    await _admin(request)
    user = str(form.get("user") or "").strip()
    if not user or len(user) > 64:
        raise InputError("Choose whose limit to set.", field="user")
    target = Requester(platform=seen.platform, workspace=seen.workspace, user=user)
    reason = str(form.get("reason") or "").strip() or "set in the gallery"
    service = core_of(request).service
    try:
        value = await service.set_limit(
            seen.requester, target, str(form.get("amount") or ""), reason
        )
    except BotError as err:
        await flash(request, str(err))
    else:
        name = next((r.name for r in (await _report(request, seen)).rows if r.user == user), user)
        await flash(request, f"Limit of {name} set to {fmt_credits(value)} credits per period.")
    raise web.HTTPSeeOther(BACK)


def add_routes(gallery: web.Application) -> None:
    gallery.router.add_get("/admin", dashboard)
    gallery.router.add_get("/admin/chart.png", chart)
    gallery.router.add_post("/admin/approvals/{approval}", decide)
    gallery.router.add_post("/admin/limits", set_limit)
