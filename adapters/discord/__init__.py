"""Discord adapter (discord.py 2.7): `/sora` and friends, live progress, persistent buttons.

The entry point passes `DiscordRuntime` to the process wiring as its `PlatformFactory`
(bot/services/interface.py): `DiscordRuntime(host)`, then `start()`, `ready`, `close()`. Nothing
here
holds a business rule: the core (`bot/`) decides, this package translates Discord interactions
into core calls and core events into Discord messages.
"""

from __future__ import annotations

from adapters.discord.port import DiscordPort
from adapters.discord.runtime import DiscordRuntime, SoraClient

__all__ = ["DiscordPort", "DiscordRuntime", "SoraClient"]
