"""The admin dashboard over real HTTP, on both engines: the figures are the usage report's,
a POST without the session's CSRF token (or with another) is 403 and changes nothing, a
decision is the chat buttons' one (one counts, a second says it was decided), a limit is set
through the service and audited with the admin as actor."""

from __future__ import annotations

import html
import re
import struct
from decimal import Decimal
from typing import Any

import pytest

from bot.domain.models import Requester, Surface, fmt_credits
from tests.conftest import ALICE
from tests.gallery.visitor import Visitor, delivered, visiting
from tests.support import RecordingPort, RunningCore

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ADMIN = Requester(platform="test", workspace="W1", user="dana", workspace_admin=True)


@pytest.fixture
def core_settings(database_url: str) -> dict[str, Any]:
    return {"database_url": database_url}


async def _admin(rc: RunningCore, visitor: Visitor) -> None:
    await visitor.sign_in(rc, ADMIN)
    assert (await visitor.get("/gallery/admin")).status == 200  # and its CSRF token is read


async def test_the_dashboard_shows_the_reports_figures(
    rc: RunningCore, port: RecordingPort
) -> None:
    await delivered(rc, port, ALICE, "a first clip")
    await delivered(rc, port, ALICE, "a second clip")
    report = await rc.core.service.report(ADMIN, "test", "W1")
    (row,) = report.rows
    async with visiting(rc) as dana:
        await dana.sign_in(rc, ADMIN)
        page = await dana.get("/gallery/admin")
    usage = page.text.split('id="usage-alice"', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", usage)
    # Counts as counts; every credit figure in the chat's one format (fmt_credits: "0", not
    # "0.00" beside it).
    credits = [row.used, row.reserved, row.allowance, row.available]
    assert cells[:7] == [str(row.jobs), str(row.delivered), str(row.failed)] + [
        fmt_credits(value) for value in credits
    ]
    assert row.reserved == 0 and cells[4] == "0"
    assert not re.search(r"\b\d+\.\d*0\b", " ".join(cells)), cells  # no trailing zeros
    ended = {e.job.id for e in port.events if e.kind == "delivered"}
    charges = [(await rc.core.service.get_job(job_id)).charge for job_id in ended]
    assert row.used == sum(charges, Decimal(0))  # the report's figure is the ledger's
    assert 'id="chart"' in page.text and 'src="/gallery/admin/chart.png"' in page.text
    # The limit picker names what it shows by the table's words: limit, and allowance.
    option = re.search(r'<option value="alice">([^<]*)</option>', page.text)
    assert option is not None
    assert option.group(1) == (
        f"alice (limit {fmt_credits(row.limit)}, allowance {fmt_credits(row.allowance)})"
    )


def png_size(body: bytes) -> tuple[int, int]:
    assert body.startswith(b"\x89PNG\r\n\x1a\n") and body[12:16] == b"IHDR"
    width, height = struct.unpack(">II", body[16:24])
    return width, height


async def test_the_chart_is_sized_linked_and_the_table_scrolls_by_keyboard(
    rc: RunningCore, port: RecordingPort
) -> None:
    await delivered(rc, port, ALICE, "a clip to chart")
    async with visiting(rc) as dana:
        await dana.sign_in(rc, ADMIN)
        page = await dana.get("/gallery/admin")
        png = await dana.get("/gallery/admin/chart.png")
    img = re.search(r"<img id=\"chart\"[^>]*>", page.text)
    assert img is not None
    width = re.search(r'width="(\d+)"', img.group(0))
    height = re.search(r'height="(\d+)"', img.group(0))
    assert width and height
    # The page reserves the PNG's own size (nothing moves when it loads) ...
    assert (int(width.group(1)), int(height.group(1))) == png_size(png.body)
    # ... links to it full size, and says its figures in words and where the table is.
    assert re.search(r'<a id="chart-link" href="/gallery/admin/chart.png"', page.text)
    alt = re.search(r'alt="([^"]*)"', img.group(0))
    assert alt is not None
    assert "alice: used" in html.unescape(alt.group(1))
    assert 'id="chart-caption"' in page.text and "table above" in page.text
    region = re.search(r'<div id="usage-scroll"[^>]*>', page.text)
    assert region is not None
    for attribute in ('tabindex="0"', 'role="region"', 'aria-labelledby="usage-title"'):
        assert attribute in region.group(0)
    assert 'id="usage-hint"' in page.text


async def test_posts_without_the_sessions_csrf_token_change_nothing(rc: RunningCore) -> None:
    service = rc.core.service
    before = (await service.balance(ALICE)).limit
    audit_before = len(await service.audit_log())
    async with visiting(rc) as dana:
        await _admin(rc, dana)
        good = dana.csrf
        assert good
        for token in (None, "", "not-the-token", good[:-1]):
            form = {"user": "alice", "amount": "999"}
            if token is not None:
                form["csrf"] = token
            refused = await dana.post("/gallery/admin/limits", form, allow_redirects=False)
            assert refused.status == 403 and "Nothing was changed" in refused.text, token
        async with visiting(rc) as stranger:  # another browser: its own session, no token
            forged = await stranger.post(
                "/gallery/admin/limits", {"user": "alice", "amount": "999", "csrf": good}
            )
            assert forged.status == 403
    assert (await service.balance(ALICE)).limit == before
    assert len(await service.audit_log()) == audit_before


async def test_an_admin_sets_a_limit_and_it_is_audited(
    rc: RunningCore, port: RecordingPort
) -> None:
    await delivered(rc, port, ALICE, "something to be listed for")
    service = rc.core.service
    async with visiting(rc) as dana:
        await _admin(rc, dana)
        done = await dana.post(
            "/gallery/admin/limits",
            {"user": "alice", "amount": "123.5", "reason": "pilot", "csrf": dana.csrf},
        )
        assert done.status == 200 and "Limit of alice set to 123.5" in done.text
        bad = await dana.post(
            "/gallery/admin/limits", {"user": "alice", "amount": "-4", "csrf": dana.csrf}
        )
        assert bad.status == 200 and "between 0 and" in bad.text  # said, nothing written
    assert (await service.balance(ALICE)).limit == Decimal("123.5")
    entries = [e for e in await service.audit_log() if e.get("actor") == "test:dana"]
    assert len(entries) == 1 and entries[0]["reason"] == "pilot"
    assert entries[0]["target"] == "test:W1:alice"


async def test_a_non_admin_cannot_post_as_one(rc: RunningCore) -> None:
    async with visiting(rc) as alice:
        await alice.sign_in(rc, ALICE)
        await alice.get("/gallery/")
        refused = await alice.post(
            "/gallery/admin/limits", {"user": "alice", "amount": "100000", "csrf": alice.csrf}
        )
        assert refused.status == 403
    assert (await rc.core.service.balance(ALICE)).limit != Decimal(100000)


async def test_approve_from_the_dashboard_counts_once(rc: RunningCore, port: RecordingPort) -> None:
    service = rc.core.service
    request = service.parse("a very expensive dream")
    approval = await service.ask_admin(ALICE, request, Surface())
    async with visiting(rc) as dana:
        await _admin(rc, dana)
        page = await dana.get("/gallery/admin")
        assert f'id="approve-{approval.id}"' in page.text
        path = f"/gallery/admin/approvals/{approval.id}"
        forged = await dana.post(path, {"decision": "approve"})
        assert forged.status == 403
        assert (await service.get_approval(approval.id)).status == "pending"
        first = await dana.post(path, {"decision": "approve", "csrf": dana.csrf})
        assert first.status == 200 and "Approved" in first.text
        assert f'id="approve-{approval.id}"' not in first.text
        second = await dana.post(path, {"decision": "deny", "csrf": dana.csrf})
        # Said by the name the page knows ("you"), not as the raw "test:dana".
        assert "This request was already approved by you." in second.text
        assert "test:dana" not in second.text
    decided = await service.get_approval(approval.id)
    assert decided.status == "approved" and decided.decided_by == "test:dana"
    assert decided.job_id is not None
    await port.wait_for(decided.job_id, "delivered", timeout=20)
    grants = [e for e in await service.audit_log() if e.get("action") == "approve"]
    assert len(grants) == 1


async def test_a_decision_made_by_another_admin_names_them(
    rc: RunningCore, port: RecordingPort
) -> None:
    service = rc.core.service
    erin = Requester(
        platform="test", workspace="W1", user="erin", display_name="Erin", workspace_admin=True
    )
    await delivered(rc, port, erin, "a clip, so the usage table knows Erin's name")
    approval = await service.ask_admin(ALICE, service.parse("a dream"), Surface())
    async with visiting(rc) as dana:
        await _admin(rc, dana)
        await service.decide_approval(approval.id, erin, False, "not now")
        late = await dana.post(
            f"/gallery/admin/approvals/{approval.id}", {"decision": "approve", "csrf": dana.csrf}
        )
    assert "This request was already denied by Erin." in late.text
    assert "test:erin" not in late.text
    assert (await service.get_approval(approval.id)).status == "denied"
