"""Chat commands: what a line of chat asks for (`/sora credits`, `/sora jobs`, a video…),
and the `/sora help` text. Shared by Slack and the console; Discord has its own commands.

Invariant: anything that is not a known command word is a video request, handed unchanged to
`bot.domain.grammar.parse_request` (which validates it).
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.catalog import Catalog
from bot.domain.errors import BotError
from bot.domain.grammar import MAX_TEXT_CHARS, OPTIONS, visible_text
from bot.domain.models import fmt_credits
from bot.domain.offer import Choices, is_offered, quote_choices
from bot.domain.pricing import PriceList

CommandKind = Literal["video", "credits", "jobs", "help", "admin", "cancel", "gallery"]
_COMMAND_WORDS: dict[str, CommandKind] = {
    "help": "help",
    "--help": "help",
    "-h": "help",
    "?": "help",
    "credits": "credits",
    "balance": "credits",
    "jobs": "jobs",
    "admin": "admin",
    "cancel": "cancel",
    "gallery": "gallery",
}
# Words that read like prose after these ("credits roll over a city") make a video prompt:
# these commands take at most one argument (`jobs 20`, `credits @user`).
_FEW_ARGS: frozenset[CommandKind] = frozenset({"help", "credits", "jobs"})
# And these take none: `gallery of old maps at dusk` is a prompt.
_NO_ARGS: frozenset[CommandKind] = frozenset({"gallery"})


class ChatCommand(BaseModel):
    """What a line of chat asks for. `text` is everything after the command word (for
    `video`, the whole request text); `args` are its whitespace-separated words."""

    model_config = ConfigDict(frozen=True)

    kind: CommandKind
    args: list[str] = Field(default_factory=list)
    text: str = ""


def parse_chat_command(text: str) -> ChatCommand:
    """`/sora credits` → credits; `/sora cancel J1` → cancel ['J1']; anything else → video.

    A leading `/sora` is optional. The first word picks the command (any case); `help`,
    `credits` and `jobs` followed by more than one word, and `gallery` followed by any, are
    taken as a video prompt instead.
    """
    if len(text) > MAX_TEXT_CHARS:
        return ChatCommand(kind="video", text=text)  # parse_request refuses it with the reason
    body = visible_text(text, keep_joiners=True).strip()
    first, _, rest = body.partition(" ")
    if unicodedata.normalize("NFKC", first).casefold() == "/sora":
        body = rest.strip()
    words = body.split()
    if not words:
        return ChatCommand(kind="video", text="")
    kind = _COMMAND_WORDS.get(unicodedata.normalize("NFKC", words[0]).casefold())
    if kind is None or (kind in _FEW_ARGS and len(words) > 2) or (kind in _NO_ARGS and words[1:]):
        return ChatCommand(kind="video", text=body)
    rest_text = body[len(body.split(None, 1)[0]) :].strip()
    return ChatCommand(kind=kind, args=words[1:], text=rest_text)


def usage_text(
    catalog: Catalog, default_model: str | None = None, prices: PriceList | None = None
) -> str:
    """Plain-text help for `/sora help`: the grammar, the other commands and the models (with
    the price of each duration at the model's defaults, from `prices` when given; a model the
    price list does not offer is left out)."""
    lines = [
        "/sora <what the video should show> [options]",
        "  e.g. /sora a paper boat on a rainy street --duration 8 --ar landscape",
        "Options (anywhere in the text):",
    ]
    for opt in OPTIONS:
        head = f"--{opt.names[0]}" + (f" {opt.metavar}" if opt.metavar else "")
        aliases = [f"--{n}" for n in opt.names[1:]] + [f"-{s}" for s in opt.shorts]
        alias_text = f" ({', '.join(aliases)})" if aliases else ""
        lines.append(f"  {head}{alias_text}: {opt.help}")
    lines.append(
        "Also: /sora credits, /sora jobs, /sora cancel <job id>, /sora gallery, /sora help"
    )
    default = default_model.casefold() if default_model else None
    lines.append("Models:")
    for spec in catalog.models:
        if not spec.selectable or (prices is not None and not is_offered(prices, spec.name)):
            continue
        mark = " (default)" if spec.name.casefold() == default else ""
        shown = (
            spec.durations
            if len(spec.durations) <= 4
            else spec.durations[:: len(spec.durations) - 1]
        )
        costs = []
        for d in shown:
            if prices is None:
                break
            try:
                price = quote_choices(catalog, prices, spec, Choices.defaults(spec, d)).credits
            except BotError:
                continue
            costs.append(f"{d}s {fmt_credits(price)}")
        ds = spec.durations
        run = len(ds) > 4 and list(ds) == list(range(ds[0], ds[0] + len(ds)))
        seconds = f"{ds[0]}-{ds[-1]}" if run else ", ".join(str(d) for d in ds)
        extras = [
            x
            for x, on in (
                (
                    ("image" if spec.max_images <= 1 else f"up to {spec.max_images} images")
                    + (" (needed)" if spec.image_required else ""),
                    spec.image_input,
                ),
                ("quality " + "/".join(spec.qualities), bool(spec.qualities)),
                ("audio", spec.audio_option),
                ("watermark", spec.watermark_option),
                ("resize", bool(spec.resize_modes)),
            )
            if on
        ]
        lines.append(
            f"  {spec.name}{mark}: {spec.label}; {seconds} s; ratios "
            f"{', '.join(spec.aspect_ratios)}"
            + (f"; credits {', '.join(costs)}" if costs else "")
            + (f"; {', '.join(extras)}" if extras else "")
        )
    return "\n".join(lines)
