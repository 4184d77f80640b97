"""`sora-bot check`: configuration and reachability, each line saying what is wrong and how
to fix it. Secrets are never printed. DEFAULT_MODEL must be offered by EvoLink's price list.

Invariant: `check` fails (exit 1) on every problem that makes `sora-bot run` refuse to start
(`Settings.run_problems`, each its own ✗ line, all at once), and also on what it finds when
it reaches out (a refused key or token, an unreachable service)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

import httpx

from bot.domain.catalog import Catalog
from bot.domain.errors import BotError
from bot.domain.models import fmt_credits
from bot.infra.config import Settings
from bot.infra.evolink import EvoLinkClient


async def _check_offered(
    settings: Settings, catalog: Catalog, report: Callable[[bool, str], None]
) -> None:
    """DEFAULT_MODEL must be a model EvoLink's price list offers now: read the public list
    (anonymous), else the saved copy or snapshot `sora-bot models` uses, and say which."""
    from bot.domain.offer import require_offered
    from bot.domain.pricing import PriceList
    from bot.services.prices import video_only
    from sora_bot.models_command import current_prices

    source = "EvoLink's price list"
    client = EvoLinkClient(settings.evolink_base_url, "", max_attempts=1)
    try:
        prices = PriceList.from_json(video_only(await client.pricing_rules()), source=source)
    except BotError as exc:
        prices = await asyncio.to_thread(current_prices, settings)
        source = f"the {prices.source} (EvoLink's price list could not be read: {exc})"
    finally:
        await client.aclose()
    try:
        require_offered(catalog, prices, catalog.get(settings.default_model).name)
    except BotError as exc:
        report(False, f"DEFAULT_MODEL: {exc} (from {source})")
    else:
        report(True, f"DEFAULT_MODEL {settings.default_model} is offered by {source}")


async def _check_slack_installs(
    http: httpx.AsyncClient, settings: Settings, report: Callable[[bool, str], None]
) -> None:
    """Installation mode has no token to test: Slack is asked to exchange a code that does not
    exist. `invalid_code` means it accepted SLACK_CLIENT_ID and SLACK_CLIENT_SECRET."""
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    try:
        resp = await http.post(
            settings.slack_api_url.rstrip("/") + "/oauth.v2.access",
            data={"code": "sora-bot-check"},
            auth=(settings.slack_client_id, settings.slack_client_secret.get_secret_value()),
        )
        error = resp.json().get("error")
    except (httpx.HTTPError, ValueError) as exc:
        report(False, f"Slack: cannot reach {settings.slack_api_url} ({type(exc).__name__})")
        return
    if error == "invalid_code":
        where = (settings.public_base_url or "PUBLIC_BASE_URL") + "/slack/install"
        report(True, f"Slack: installation mode, client credentials accepted; install at {where}")
    else:
        report(False, f"Slack: SLACK_CLIENT_ID / SLACK_CLIENT_SECRET refused ({error})")


async def run_checks(settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    problems = 0

    def report(ok: bool, text: str) -> None:
        nonlocal problems
        problems += 0 if ok else 1
        out.write(("✓ " if ok else "✗ ") + text + "\n")

    for problem in settings.run_problems:
        report(False, problem)

    try:
        catalog = Catalog.load(settings.catalog_path)
        report(True, f"catalog: {len(catalog.names())} models ({', '.join(catalog.names())})")
        catalog.get(settings.default_model)
        report(True, f"DEFAULT_MODEL {settings.default_model} is in the catalog")
        await _check_offered(settings, catalog, report)
    except BotError as exc:
        report(False, str(exc))

    if settings.evolink_api_key is not None:  # a missing key is one of the run problems
        client = EvoLinkClient(
            settings.evolink_base_url,
            settings.evolink_api_key.get_secret_value(),
            max_attempts=2,
        )
        try:
            account = await client.credits()
            if account.unlimited:
                report(
                    True, f"EvoLink at {settings.evolink_base_url}: key accepted, unlimited credits"
                )
            else:
                remaining = (
                    "unknown" if account.remaining is None else fmt_credits(account.remaining)
                )
                report(
                    True,
                    f"EvoLink at {settings.evolink_base_url}: key accepted, "
                    f"{remaining} credits left",
                )
        except BotError as exc:
            report(False, f"EvoLink at {settings.evolink_base_url}: {exc}")
        finally:
            await client.aclose()

    async with httpx.AsyncClient(timeout=10.0) as http:
        if settings.discord_token is None:
            out.write("- Discord: DISCORD_TOKEN not set (Discord disabled)\n")
        else:
            try:
                resp = await http.get(
                    settings.discord_api_base.rstrip("/") + "/users/@me",
                    headers={"Authorization": f"Bot {settings.discord_token.get_secret_value()}"},
                )
                if resp.status_code == 200:
                    report(True, f"Discord: logged in as {resp.json().get('username', '?')}")
                else:
                    report(False, f"Discord: token rejected (HTTP {resp.status_code})")
            except httpx.HTTPError as exc:
                report(
                    False,
                    f"Discord: cannot reach {settings.discord_api_base} ({type(exc).__name__})",
                )
        if settings.slack_installs:
            await _check_slack_installs(http, settings, report)
        elif settings.slack_bot_token is None:
            out.write("- Slack: SLACK_BOT_TOKEN not set (Slack disabled)\n")
        else:
            try:
                resp = await http.post(
                    settings.slack_api_url.rstrip("/") + "/auth.test",
                    headers={
                        "Authorization": f"Bearer {settings.slack_bot_token.get_secret_value()}"
                    },
                )
                body = resp.json()
                if body.get("ok"):
                    report(True, f"Slack: authenticated to team {body.get('team', '?')}")
                else:
                    report(
                        False, f"Slack: auth.test failed ({body.get('error', resp.status_code)})"
                    )
            except (httpx.HTTPError, ValueError) as exc:
                report(
                    False, f"Slack: cannot reach {settings.slack_api_url} ({type(exc).__name__})"
                )

    if settings.public_base_url is None:
        out.write(
            "- PUBLIC_BASE_URL not set: no EvoLink callbacks (polling only), big videos are "
            "linked with EvoLink's 24-hour link, Slack images cannot be used\n"
        )
    else:
        report(True, f"PUBLIC_BASE_URL {settings.public_base_url}")
    out.write("all good\n" if problems == 0 else f"{problems} problem(s)\n")
    return 0 if problems == 0 else 1
