"""`/sora admin chart [YYYY-MM-DD]` and `/sora admin export [YYYY-MM-DD]`: reports as files.

    chart   the period's spend per person as a PNG (`bot.services.chart.render_chart`), uploaded
    into the
            channel the admin typed in, with the chart in words (`describe_chart`) as its
            comment and alt text; a DM with the admin when the bot may not post there
    export  the period's usage as CSV (`bot.services.reports.report_csv`), sent to the admin in a
    DM:
            it is a file for a spreadsheet with everyone's exact figures, not a talking point

Invariants:
- Reports are built by the core with the actor (`BotService.report`), so only admins get
  them (PermissionDenied otherwise); the file holds exactly what the core rendered.
- Drawing the chart blocks for a fraction of a second: it runs in a worker thread, never on the
  event loop that answers Slack.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError

from adapters.slack.admins import OpenDm
from adapters.slack.clients import ClientBook
from adapters.slack.commands import parse_day
from adapters.slack.port import CANNOT_POST_HERE, slack_error
from adapters.slack.render import short
from bot.domain.errors import BotError
from bot.domain.models import Requester
from bot.services.chart import describe_chart, render_chart
from bot.services.interface import BotService
from bot.services.reports import period_title, report_csv

log = logging.getLogger(__name__)

COMMENT_CHARS = 3900  # Slack truncates longer message texts
ALT_TEXT_CHARS = 1000  # files.getUploadURLExternal's alt_txt limit


class SlackReports:
    def __init__(self, clients: ClientBook, service: BotService, open_dm: OpenDm) -> None:
        self.clients = clients
        self.service = service
        self.open_dm = open_dm

    async def run(self, actor: Requester, verb: str, args: list[str], channel: str | None) -> str:
        """Upload the chart or the CSV; the reply text for the admin (or the refusal)."""
        try:
            report = await self.service.report(actor, "slack", actor.workspace, day=parse_day(args))
            if verb == "chart":
                png = await asyncio.to_thread(render_chart, report)
                description = describe_chart(report)
                where = await self.upload(
                    channel,
                    actor,
                    data=png,
                    filename=f"usage-{report.period_start.isoformat()}.png",
                    title=f"Usage {period_title(report)}",
                    comment=short(description, COMMENT_CHARS),
                    alt_text=short(description, ALT_TEXT_CHARS),
                )
                return f"The usage chart for {period_title(report)} is {_place(where)}."
            where = await self.upload(
                None,
                actor,
                data=report_csv(report).encode(),
                filename=f"usage-{report.period_start.isoformat()}.csv",
                title=f"Usage {period_title(report)} (CSV)",
                comment=(f"Usage {period_title(report)}: {len(report.rows)} people, one row each."),
            )
            return f"The usage CSV for {period_title(report)} is {_place(where)}."
        except BotError as err:
            return f":warning: {err}"
        except SlackApiError as exc:
            log.warning("report: Slack refused the upload (%s)", slack_error(exc))
            return f":warning: Slack did not take the file ({slack_error(exc)})."

    async def upload(
        self,
        channel: str | None,
        actor: Requester,
        *,
        data: bytes,
        filename: str,
        title: str,
        comment: str,
        alt_text: str | None = None,
    ) -> str:
        """Upload into `channel`, or a DM with `actor` (no channel, or the bot may not post
        there); returns the channel it went to. With the token of the actor's workspace."""
        client = await self.clients.for_team(actor.workspace)
        if channel:
            try:
                await client.files_upload_v2(
                    channel=channel,
                    file=data,
                    filename=filename,
                    title=title,
                    initial_comment=comment,
                    alt_txt=alt_text,
                )
                return channel
            except SlackApiError as exc:
                if slack_error(exc) not in CANNOT_POST_HERE:
                    raise
                log.info("report: cannot upload in %s (%s); DM instead", channel, slack_error(exc))
        dm = await self.open_dm(actor.workspace, actor.user)
        await client.files_upload_v2(
            channel=dm,
            file=data,
            filename=filename,
            title=title,
            initial_comment=comment,
            alt_txt=alt_text,
        )
        return dm


def _place(channel: str) -> str:
    return "in our direct messages" if channel.startswith("D") else f"in <#{channel}>"
