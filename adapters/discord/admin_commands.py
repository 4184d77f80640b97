"""`/sora-admin …`: budgets for this server, usage reports, the chart and the CSV export.

Invariants:
- Every subcommand is checked by the core (`bot.domain.permissions`): ADMIN_USER_IDS, or Discord's
  Manage Server permission in this server, which `requester_of` passes as a fact (a server
  admin can change a command's default permissions, so they are no check).
- Every answer is ephemeral — the table, the chart and the CSV too: they show each person's
  spend, which is for the budget holders, not the whole channel.
- The chart is drawn off the event loop (`asyncio.to_thread`, ~0.25 s of matplotlib) after the
  interaction is deferred; its description (`describe_chart`) is the message text and the
  attachment's alt text, so the figures are readable without the picture.
- `period` is any day of the wanted period (`2026-10-15`) or a month (`2026-10`); the report
  is the period that contains it.
- `settings` is this server's settings (bot/domain/workspace_settings.py): all of them with no
  options, one and what it means with `key` only, one changed with `key` (a choice of
  SETTING_KEYS) and `value` (the text as typed; `default` = back to the deployment's value).
  The core reads the value and checks the admin; a refusal changes nothing and is said in its
  own words.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Awaitable
from typing import Any

import discord
from discord import app_commands

from adapters.discord import flow
from adapters.discord.render import CONTENT_MAX, clip
from adapters.discord.surface import PLATFORM, requester_of
from bot.domain.errors import BotError, InputError
from bot.domain.models import Requester, fmt_credits
from bot.domain.workspace_settings import SETTING_KEYS, SPECS, EffectiveSettings
from bot.services.chart import describe_chart, render_chart
from bot.services.reports import UsageReport, period_title, report_csv, report_text

ALT_TEXT_MAX = 1024  # Discord's limit on an attachment's description
SETTING_CHOICES = [app_commands.Choice(name=spec.label, value=spec.key) for spec in SETTING_KEYS]


def setting_line(settings: EffectiveSettings, key: str) -> str:
    """`**Label**: `value`` with "(default)" when it is the deployment's value."""
    value = settings.value(key)
    if value is None:
        shown = "none"
    elif key == "admin_channel":
        shown = f"<#{value}>"
    else:
        shown = f"`{settings.text(key)}`"
    mark = "" if key in settings.overridden else " (default)"
    return f"**{SPECS[key].label}**: {shown}{mark}"


def setting_help(settings: EffectiveSettings, key: str) -> str:
    """One setting: its value, what it means, and where its default comes from."""
    spec = SPECS[key]
    return (
        f"{setting_line(settings, key)}\n{spec.help}\n"
        f"Default: the deployment's `{spec.env_for(PLATFORM)}`. Change it with "
        f"`/sora-admin settings key:{spec.label} value:…`."
    )


def settings_text(settings: EffectiveSettings) -> str:
    lines = ["**This server's settings**"]
    lines += [setting_line(settings, spec.key) for spec in SETTING_KEYS]
    lines.append(
        "Change one: `/sora-admin settings key:… value:…` (`default` = back to the default)."
    )
    return "\n".join(lines)


def parse_period(text: str | None) -> dt.date | None:
    """A day of the wanted period: `2026-10-15`, or `2026-10` for that month's first day."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        if len(value) == 7:
            return dt.date.fromisoformat(value + "-01")
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{value!r} is not a date: give any day of the period, like 2026-10-15, "
            "or a month, like 2026-10.",
            field="period",
        ) from None


class AdminCommands(app_commands.Group):
    """`/sora-admin`: quotas and reports for this server; the core checks every subcommand."""

    def __init__(self) -> None:
        super().__init__(name="sora-admin", description="Manage video credit budgets")

    @staticmethod
    def _workspace(interaction: discord.Interaction[Any]) -> str:
        return str(interaction.guild_id) if interaction.guild_id is not None else "dm"

    def _target(self, interaction: discord.Interaction[Any], user: discord.User) -> Requester:
        return Requester(
            platform=PLATFORM,
            workspace=self._workspace(interaction),
            user=str(user.id),
            display_name=user.display_name,
        )

    async def _run(
        self, interaction: discord.Interaction[Any], action: Awaitable[object], done: str
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await action
        except BotError as err:
            await interaction.followup.send(flow.error_text(err), ephemeral=True)
            return
        await interaction.followup.send(done, ephemeral=True)

    async def _guild_only(self, interaction: discord.Interaction[Any], what: str) -> bool:
        if interaction.guild_id is not None:
            return True
        await interaction.response.send_message(
            f"{what} belongs to a server: run this in the server.", ephemeral=True
        )
        return False

    @app_commands.command(name="set-limit", description="Set a user's credits per period")
    @app_commands.describe(user="Who", amount="Credits per period, e.g. 300 or 12.5")
    async def set_limit(
        self, interaction: discord.Interaction[Any], user: discord.User, amount: str
    ) -> None:
        service = flow.service_of(interaction)
        await self._run(
            interaction,
            service.set_limit(
                requester_of(interaction),
                self._target(interaction, user),
                amount,
            ),
            f"{user.mention} can now spend {amount} credits per period.",
        )

    @app_commands.command(name="grant", description="Give a user extra credits this period")
    @app_commands.describe(user="Who", amount="Extra credits", reason="Why (kept in the audit log)")
    async def grant(
        self,
        interaction: discord.Interaction[Any],
        user: discord.User,
        amount: str,
        reason: str = "",
    ) -> None:
        service = flow.service_of(interaction)
        await self._run(
            interaction,
            service.grant(
                requester_of(interaction),
                self._target(interaction, user),
                amount,
                reason,
            ),
            f"Granted {amount} credits to {user.mention} for this period.",
        )

    @app_commands.command(name="team-budget", description="Set this server's credits per period")
    @app_commands.describe(amount="Credits per period for the whole server; 0 = no team cap")
    async def team_budget(self, interaction: discord.Interaction[Any], amount: str) -> None:
        if not await self._guild_only(interaction, "A team budget"):
            return
        service = flow.service_of(interaction)
        await self._run(
            interaction,
            service.set_team_budget(
                requester_of(interaction),
                PLATFORM,
                self._workspace(interaction),
                amount,
            ),
            f"This server's budget is now {amount} credits per period.",
        )

    @app_commands.command(name="role-limit", description="Set the credits per period of a role")
    @app_commands.describe(
        role="Everyone with this role gets this allowance (the highest of their roles applies)",
        amount="Credits per period, e.g. 600",
    )
    async def role_limit(
        self, interaction: discord.Interaction[Any], role: discord.Role, amount: str
    ) -> None:
        if not await self._guild_only(interaction, "A role allowance"):
            return
        service = flow.service_of(interaction)
        await self._run(
            interaction,
            service.set_role_limit(
                requester_of(interaction),
                PLATFORM,
                self._workspace(interaction),
                str(role.id),
                amount,
            ),
            f"Members with {role.mention} can now spend {amount} credits per period "
            "(a person's own limit still comes first).",
        )

    @app_commands.command(name="settings", description="This server's settings: see or change")
    @app_commands.describe(
        key="The setting to change (leave out to see them all)",
        value="Its new value, as text; default = back to the deployment's value",
    )
    @app_commands.choices(key=SETTING_CHOICES)
    async def settings(
        self,
        interaction: discord.Interaction[Any],
        key: app_commands.Choice[str] | None = None,
        value: str | None = None,
    ) -> None:
        if not await self._guild_only(interaction, "Settings"):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        service = flow.service_of(interaction)
        actor, workspace = requester_of(interaction), self._workspace(interaction)
        try:
            if value is None:
                current = await service.workspace_settings(actor, PLATFORM, workspace)
                text = settings_text(current) if key is None else setting_help(current, key.value)
            elif key is None:
                raise InputError(
                    "Which setting? Give `key` with the `value` (or neither, to see them all).",
                    field="key",
                )
            else:
                current = await service.change_workspace_setting(
                    actor, PLATFORM, workspace, key.value, value
                )
                text = "Changed. " + setting_line(current, key.value)
        except BotError as err:
            await interaction.followup.send(flow.error_text(err), ephemeral=True)
            return
        await interaction.followup.send(clip(text, CONTENT_MAX), ephemeral=True)

    async def _report(
        self, interaction: discord.Interaction[Any], period: str | None
    ) -> UsageReport | None:
        """Defer, then the admin-checked report (None after telling the user why not)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        service = flow.service_of(interaction)
        try:
            return await service.report(
                requester_of(interaction),
                PLATFORM,
                self._workspace(interaction),
                day=parse_period(period),
            )
        except BotError as err:
            await interaction.followup.send(flow.error_text(err), ephemeral=True)
            return None

    @app_commands.command(name="usage", description="Who spent what this period (or another)")
    @app_commands.describe(
        period="Any day of the period to show, e.g. 2026-10-15 (default: this period)",
        chart="Post a chart: spend per person against allowance and pace",
    )
    async def usage(
        self,
        interaction: discord.Interaction[Any],
        period: str | None = None,
        chart: bool = False,
    ) -> None:
        report = await self._report(interaction, period)
        if report is None:
            return
        if not chart:
            table = clip(report_text(report), CONTENT_MAX - 8)
            await interaction.followup.send(f"```\n{table}\n```", ephemeral=True)
            return
        png = await asyncio.to_thread(render_chart, report)
        description = describe_chart(report)
        picture = discord.File(
            io.BytesIO(png),
            filename=f"sora-usage-{report.period_start.isoformat()}.png",
            description=clip(description, ALT_TEXT_MAX),
        )
        await interaction.followup.send(
            clip(description, CONTENT_MAX), file=picture, ephemeral=True
        )

    @app_commands.command(name="export", description="The period's usage as a CSV file")
    @app_commands.describe(period="Any day of the period, e.g. 2026-10-15 (default: this period)")
    async def export(
        self, interaction: discord.Interaction[Any], period: str | None = None
    ) -> None:
        report = await self._report(interaction, period)
        if report is None:
            return
        data = report_csv(report).encode()
        totals = report.totals
        await interaction.followup.send(
            f"Usage {period_title(report)}: {len(report.rows)} people, {totals.jobs} jobs, "
            f"{fmt_credits(totals.used)} credits used, {fmt_credits(totals.reserved)} held.",
            file=discord.File(
                io.BytesIO(data), filename=f"sora-usage-{report.period_start.isoformat()}.csv"
            ),
            ephemeral=True,
        )
