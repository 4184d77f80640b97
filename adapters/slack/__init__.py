"""Slack adapter (slack-bolt `AsyncApp`): `/sora`, shortcuts and modals, progress messages,
uploads, App Home. Entry point: `attach_slack(core, web_app) -> SlackRuntime`."""

from __future__ import annotations

from adapters.slack.runtime import SlackRuntime, attach_slack, check_slack

__all__ = ["SlackRuntime", "attach_slack", "check_slack"]
