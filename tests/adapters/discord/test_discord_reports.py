"""`/sora-admin usage` (table, chart, past periods) and `/sora-admin export`, through the client."""

from __future__ import annotations

import csv
import io
from typing import Any

from bot.services.chart import describe_chart
from bot.services.reports import build_report, report_csv
from tests.adapters.discord.conftest import World
from tests.adapters.discord.fake_discord import InteractionRecord, RecordedRequest
from tests.adapters.discord.helpers import (
    ALICE,
    CAROL,
    MANAGER,
    PNG_SIGNATURE,
    eventually,
    is_upload,
    opt,
    sora_options,
)


async def admin(
    world: World, sub: str, options: list[dict[str, Any]], user: dict[str, Any] = MANAGER
) -> RecordedRequest:
    """Run `/sora-admin <sub>` and return the follow-up Discord received."""
    record: InteractionRecord = await world.fake.slash(
        "sora-admin",
        [{"name": sub, "type": 1, "options": options}],
        user=user,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        admin=user is MANAGER,
    )
    return await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))


async def one_delivered_video(world: World) -> None:
    await world.fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await world.fake.wait_for(is_upload, within=15)

    async def captured() -> bool:
        report = await build_report(
            world.rc.core.service, actor="cli:test", platform="discord", workspace=world.guild_id
        )
        return report.totals.delivered == 1

    await eventually(captured)


async def test_usage_chart_is_a_png_with_its_description_as_text_and_alt_text(
    world: World,
) -> None:
    await one_delivered_video(world)
    sent = await admin(world, "usage", [opt("chart", True, 5)])
    [picture] = sent.files
    assert picture.data.startswith(PNG_SIGNATURE) and len(picture.data) > 1000
    assert picture.filename is not None and picture.filename.endswith(".png")
    report = await build_report(
        world.rc.core.service, actor="cli:test", platform="discord", workspace=world.guild_id
    )
    description = describe_chart(report)
    person_line = next(line for line in description.splitlines() if line.startswith("- "))
    assert "alice" in person_line and person_line in sent.json["content"]
    assert sent.json["flags"] & 64  # admins only: spend per person is not for the channel
    [attachment] = sent.json["attachments"]
    assert person_line in attachment["description"]


async def test_export_sends_the_reports_csv_as_a_file(world: World) -> None:
    await one_delivered_video(world)
    sent = await admin(world, "export", [])
    [sheet] = sent.files
    report = await build_report(
        world.rc.core.service, actor="cli:test", platform="discord", workspace=world.guild_id
    )
    assert sheet.data.decode() == report_csv(report)
    rows = list(csv.DictReader(io.StringIO(sheet.data.decode())))
    assert [(r["user"], r["delivered"]) for r in rows] == [(ALICE["id"], "1")]
    assert sent.json["flags"] & 64


async def test_usage_table_takes_a_period_and_reports_are_for_admins_only(world: World) -> None:
    await one_delivered_video(world)
    now = await admin(world, "usage", [])
    assert "alice" in now.json["content"] and "total" in now.json["content"]

    past = await admin(world, "usage", [opt("period", "2020-03-15")])
    assert (
        "2020-03-01" in past.json["content"] and "No usage in this period" in past.json["content"]
    )

    bad = await admin(world, "usage", [opt("period", "last tuesday")])
    assert "is not a date" in bad.json["content"]

    for sub, options in (("usage", [opt("chart", True, 5)]), ("export", [])):
        refused = await admin(world, sub, options, user=CAROL)
        assert "Only budget admins" in refused.json["content"] and not refused.files
