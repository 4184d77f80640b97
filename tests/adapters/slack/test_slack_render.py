"""Pure pieces: Block Kit renders, modal choices and errors, admin user references."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from adapters.slack import modal, render
from adapters.slack.commands import user_ref
from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.models import (
    Balance,
    DeliveredVideo,
    Job,
    JobStatus,
    Requester,
    Surface,
    VideoRequest,
)
from bot.services.ledger import UsageRow

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ALICE = Requester(platform="slack", workspace="T1", user="U1")


def job(status: JobStatus = JobStatus.SUBMITTED, prompt: str = "a boat", **extra: object) -> Job:
    return Job(
        id="j1",
        requester=ALICE,
        surface=Surface(channel="C1", thread="1.2"),
        status=status,
        request=VideoRequest(model="sora-2", prompt=prompt, duration=10, aspect_ratio="16:9"),
        reserved_uc=25_000,
        created_at=NOW,
        progress=40,
        task_id="task-1",
        **extra,
    )


def balance() -> Balance:
    return Balance(
        requester=ALICE,
        period_start=NOW.date(),
        resets_at=NOW + dt.timedelta(days=10),
        limit=Decimal(300),
        granted=Decimal(0),
        used=Decimal("2.5"),
        held=Decimal(0),
    )


def test_prompts_cannot_ping_or_forge_links() -> None:
    _, blocks = render.progress_message(
        job(prompt="<!channel> hi <http://x|y> & bye"), remixable=False
    )
    text = json.dumps(blocks)
    assert "<!channel>" not in text and "<http://x" not in text
    assert "&lt;!channel&gt; hi &lt;http://x|y&gt; &amp; bye" in text


@pytest.mark.parametrize(
    ("status", "remixable", "expected"),
    [
        (JobStatus.PENDING, True, ["sora_cancel"]),
        (JobStatus.SUBMITTED, True, []),  # EvoLink has it: it renders and bills, no cancel
        (JobStatus.DELIVERING, True, []),
        (JobStatus.DELIVERED, True, ["sora_again", "sora_remix"]),
        (JobStatus.DELIVERED, False, ["sora_again"]),
        (JobStatus.FAILED, True, ["sora_again"]),
        (JobStatus.CANCELLED, True, ["sora_again"]),
    ],
)
def test_buttons_follow_the_job_state(
    status: JobStatus, remixable: bool, expected: list[str]
) -> None:
    buttons = render.job_buttons(job(status), remixable=remixable)
    assert [b["action_id"] for b in buttons] == expected
    assert all(b["value"] == "j1" for b in buttons)


def test_no_cancel_once_the_submit_is_on_its_way() -> None:
    claimed = job(JobStatus.PENDING, submit_started_at=NOW)
    assert render.job_buttons(claimed, remixable=True) == []


def test_progress_shows_percentage_and_credits() -> None:
    _, blocks = render.progress_message(job(), remixable=True)
    text = json.dumps(blocks, ensure_ascii=False)
    assert "40%" in text and "2.5 credits held" in text and "`j1`" in text


def test_link_fallbacks() -> None:
    base = {"job_id": "j1", "path": "/x.mp4", "size": 5, "filename": "x.mp4"}
    hosted = DeliveredVideo(
        **base, hosted_url="https://bot/infra/media/t", source_url="https://e/v"
    )
    assert "https://bot/infra/media/t" in render.link_message(job(), hosted, balance(), "Too big.")
    source = DeliveredVideo(
        **base, source_url="https://e/v", source_expires_at=NOW + dt.timedelta(hours=24)
    )
    text = render.link_message(job(), source, balance(), "Too big.")
    assert "https://e/v" in text and "EvoLink's link works until" in text
    assert "No download link" in render.link_message(job(), DeliveredVideo(**base), balance(), "")


def test_home_stays_within_block_kit_limits() -> None:
    rows = [
        UsageRow(
            platform="slack",
            workspace="T1",
            user=f"U{i}",
            period_start=NOW.date(),
            limit=Decimal(300),
            granted=Decimal(0),
            used=Decimal(i),
            reserved=Decimal(0),
            jobs=i,
        )
        for i in range(500)
    ]
    view = render.home_view(balance(), [job(JobStatus.DELIVERED)] * 10, rows)
    assert len(view["blocks"]) <= 100
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in view["blocks"])
    assert "460 more" in json.dumps(view)


def test_modal_choices_come_from_the_catalog() -> None:
    catalog = Catalog.load()
    ratios = modal.ratio_choices(catalog, "sora-2-preview")
    assert ratios[:2] == ["1280x720", "720x1280"]
    assert "16:9" not in ratios and "9:16" not in ratios  # the same shapes for sora-2-preview
    assert {"1:1", "21:9"} <= set(ratios)  # shapes other models add
    assert len(ratios) == len(set(ratios))
    durations = modal.duration_choices(catalog)
    expected = {d for spec in catalog.models for d in spec.durations}
    assert set(durations) == expected and durations == sorted(durations)
    names = [name for _, name in modal.model_choices(catalog)]
    assert names == catalog.names(selectable_only=True)
    qualities = modal.quality_choices(catalog)
    assert set(qualities) == {q for spec in catalog.models for q in spec.qualities}


def test_field_errors_name_the_block() -> None:
    assert modal.field_errors(InputError("bad", field="image_url")) == {"image": "bad"}
    assert modal.field_errors(InputError("bad", field="duration")) == {"duration": "bad"}
    assert modal.field_errors(InputError("odd")) == {"prompt": "odd"}


def test_user_references() -> None:
    assert user_ref("<@U123ABC|bob>", "T1").user == "U123ABC"
    assert user_ref("<@W0ABC>", "T1").user == "W0ABC"
    assert user_ref("U0XYZ", "T1").key == "slack:T1:U0XYZ"
    with pytest.raises(InputError):
        user_ref("bob", "T1")


def test_message_text_loses_slack_markup() -> None:
    text = "look <@U123|ann>: <https://x.test/a|this boat> &amp; <https://y.test> in <#C1|general>"
    assert modal.plain_text(text) == "look @ann: this boat & https://y.test in @general"
