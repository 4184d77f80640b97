"""Slack adapter (slack-bolt `AsyncApp`): `/sora`, shortcuts and modals, progress messages,
uploads, App Home. The entry point passes `SlackRuntime` to the process wiring as its
`PlatformFactory` (bot/services/interface.py)."""

from __future__ import annotations

from adapters.slack.runtime import SlackRuntime, check_slack

__all__ = ["SlackRuntime", "check_slack"]
