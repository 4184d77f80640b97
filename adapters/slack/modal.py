"""The "Make a video" and "Remix" modals: building their views and reading submitted values.

Invariants:
- Block ids are the names of the fields they carry (`prompt`, `model`, `duration`,
  `aspect_ratio`, `quality`, `audio`, `watermark`, `image`, `channel`), so a core
  `InputError.field` maps onto exactly one block for `response_action="errors"` (`field_errors`).
- Choices come from the catalog, never from code: models users may order directly, the union of
  their durations, and their ratios (spellings another model already covers are left out, the
  grammar translates them). Options left empty mean "the model's default".
- `private_metadata` is JSON, under Slack's 3000-character limit, and carries only references
  (channel, message ts, a Slack file id, a job id) — never a decision the core should make.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from adapters.slack.render import short
from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.requests import RequestOptions

VIDEO_MODAL = "sora_video_modal"
REMIX_MODAL = "sora_remix_modal"
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
IMAGE_MAX_BYTES = 10 * 1024 * 1024  # EvoLink's limit for image_urls (and file_input's)
_PROMPT_MAX = 3000  # plain_text_input's own maximum
_FIELD_BLOCKS = {
    "prompt": "prompt",
    "model": "model",
    "duration": "duration",
    "aspect_ratio": "aspect_ratio",
    "watermark": "watermark",
    "quality": "quality",
    "audio": "audio",
    "image_url": "image",
    "image": "image",
    "resize_mode": "image",
    "channel": "channel",
}


def _text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _text(short(text, 75)), "value": value}


def field_errors(err: InputError) -> dict[str, str]:
    """`InputError` → `{block_id: message}` for `ack(response_action="errors", ...)`."""
    block = _FIELD_BLOCKS.get(err.field or "", "prompt")
    return {block: short(str(err), 300)}


def model_choices(catalog: Catalog) -> list[tuple[str, str]]:
    """(label, model name) for every model a user may order directly."""
    return [(f"{s.label} ({s.name})", s.name) for s in catalog.models if s.selectable]


def duration_choices(catalog: Catalog) -> list[int]:
    return sorted({d for s in catalog.models if s.selectable for d in s.durations})


def quality_choices(catalog: Catalog) -> list[str]:
    """Every quality some orderable model offers, in the catalog's order."""
    found = [q for s in catalog.models if s.selectable for q in s.qualities]
    return list(dict.fromkeys(found))


def _choice_block(block_id: str, label: str, options: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": True,
        "label": _text(label),
        "hint": _text("Empty: the model's default (only models with this option take it)."),
        "element": {
            "type": "static_select",
            "action_id": "value",
            "placeholder": _text("Model default"),
            "options": options,
        },
    }


def ratio_choices(catalog: Catalog, default_model: str) -> list[str]:
    default = catalog.find(default_model)
    seen: set[str] = set()
    shown: list[str] = []
    for spec in catalog.models:
        if not spec.selectable:
            continue
        for ratio in spec.aspect_ratios:
            # 1280x720 and 16:9 are one choice when the default model treats them as one.
            key = (default.normalize_ratio(ratio) if default else None) or ratio
            if key not in seen:
                seen.add(key)
                shown.append(ratio)
    return shown


_MENTION = re.compile(r"<[@#!]([^<>|]+)(?:\|([^<>]*))?>")
_LINK = re.compile(r"<(https?://[^<>|]+)(?:\|([^<>]*))?>")


def plain_text(mrkdwn: str) -> str:
    """A message's text without Slack's markup: `<url|label>` → label, `<@U1|ann>` → @ann."""

    def mention(match: re.Match[str]) -> str:
        return "@" + (match.group(2) or match.group(1))

    text = _LINK.sub(lambda m: m.group(2) or m.group(1), mrkdwn)
    text = _MENTION.sub(mention, text)
    return html.unescape(text).strip()


def _metadata(data: dict[str, Any]) -> str:
    text = json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))
    if len(text) > 3000:
        raise ValueError("private_metadata would exceed Slack's 3000 characters")
    return text


def read_metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def video_modal(
    catalog: Catalog,
    default_model: str,
    *,
    channel: str | None = None,
    prompt: str = "",
    image_file: dict[str, Any] | None = None,
    thread: str | None = None,
) -> dict[str, Any]:
    """The request modal. `channel` pre-selects where to post (a global shortcut has none:
    Slack then offers the conversation the user is looking at); `image_file` is a Slack file
    from the message a message shortcut was used on."""
    default = catalog.find(default_model)
    models = model_choices(catalog)
    model_select: dict[str, Any] = {
        "type": "static_select",
        "action_id": "value",
        "options": [_option(label, name) for label, name in models],
    }
    if default is not None and default.selectable:
        model_select["initial_option"] = _option(f"{default.label} ({default.name})", default.name)
    prompt_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": _PROMPT_MAX,
        "placeholder": _text("A paper boat drifting down a rainy street at dusk"),
    }
    if prompt:
        prompt_input["initial_value"] = prompt[:_PROMPT_MAX]
    channel_select: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": "value",
        "filter": {"include": ["public", "private", "im", "mpim"], "exclude_bot_users": True},
    }
    if channel:
        channel_select["initial_conversation"] = channel
    else:
        channel_select["default_to_current_conversation"] = True
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": "prompt",
            "label": _text("What should the video show?"),
            "element": prompt_input,
        },
        {"type": "input", "block_id": "model", "label": _text("Model"), "element": model_select},
        {
            "type": "input",
            "block_id": "duration",
            "optional": True,
            "label": _text("Length"),
            "hint": _text("Empty: the model's default length."),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "placeholder": _text("Model default"),
                "options": [_option(f"{d} seconds", str(d)) for d in duration_choices(catalog)],
            },
        },
        {
            "type": "input",
            "block_id": "aspect_ratio",
            "optional": True,
            "label": _text("Shape"),
            "hint": _text("Empty: the model's default shape."),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "placeholder": _text("Model default"),
                "options": [_option(r, r) for r in ratio_choices(catalog, default_model)],
            },
        },
    ]
    qualities = quality_choices(catalog)
    if qualities:
        blocks.append(_choice_block("quality", "Quality", [_option(q, q) for q in qualities]))
    if any(s.audio_option for s in catalog.models if s.selectable):
        audio = [_option("With audio", "on"), _option("Without audio", "off")]
        blocks.append(_choice_block("audio", "Audio", audio))
    if any(s.watermark_option for s in catalog.models if s.selectable):
        blocks.append(
            {
                "type": "input",
                "block_id": "watermark",
                "optional": True,
                "label": _text("Watermark"),
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [_option("Keep the watermark", "keep")],
                },
            }
        )
    if any(s.image_input for s in catalog.models if s.selectable):
        # Slack's file_input takes at most 10 files; the chosen model's own limit is checked
        # when the form is submitted (bot.domain.requests).
        most = min(10, max(s.max_images for s in catalog.models if s.selectable))
        hint = "jpg, png or webp, at most 10 MB; the first frame or a reference image."
        if most > 1:
            hint = (
                f"jpg, png or webp, at most 10 MB each; the first frame, or up to {most} "
                "reference images."
            )
        if image_file:
            hint = (
                f"Leave empty to use {short(str(image_file.get('name', 'the image')), 60)} "
                "from the message. " + hint
            )
        blocks.append(
            {
                "type": "input",
                "block_id": "image",
                "optional": True,
                "label": _text("Start from an image"),
                "hint": _text(short(hint, 150)),
                "element": {
                    "type": "file_input",
                    "action_id": "value",
                    "filetypes": ["jpg", "jpeg", "png", "webp"],
                    "max_files": most,
                },
            }
        )
    blocks.append(
        {
            "type": "input",
            "block_id": "channel",
            "optional": True,
            "label": _text("Post the video in"),
            "hint": _text("Empty: I send it to you in a direct message."),
            "element": channel_select,
        }
    )
    meta = {"thread": thread, "image_file": image_file.get("id") if image_file else None}
    return {
        "type": "modal",
        "callback_id": VIDEO_MODAL,
        "title": _text("Make a video"),
        "submit": _text("Make it"),
        "close": _text("Cancel"),
        "private_metadata": _metadata(meta),
        "blocks": blocks,
    }


@dataclass(frozen=True)
class VideoForm:
    """What the user submitted in the video modal (None = left empty)."""

    prompt: str
    model: str | None
    duration: str | None
    aspect_ratio: str | None
    keep_watermark: bool
    files: list[dict[str, Any]]
    channel: str | None
    metadata: dict[str, Any]
    quality: str | None = None
    audio: str | None = None  # "on" / "off" / None (the model's default)

    @property
    def image_file_ids(self) -> list[str]:
        """The uploaded files in order, else the message's image; empty without an image."""
        if self.files:
            return [str(f.get("id")) for f in self.files]
        ref = self.metadata.get("image_file")
        return [str(ref)] if ref else []

    def options(self, image_urls: list[str]) -> RequestOptions:
        """What was asked for, with the bot's own links for the images (first one first)."""
        return RequestOptions(
            prompt=self.prompt,
            model=self.model,
            duration=self.duration,
            aspect_ratio=self.aspect_ratio,
            image_url=image_urls[0] if image_urls else None,
            more_image_urls=tuple(image_urls[1:]),
            watermark=True if self.keep_watermark else None,
            quality=self.quality,
            audio=None if self.audio is None else self.audio == "on",
        )


def _state(view: dict[str, Any], block: str) -> dict[str, Any]:
    values = view.get("state", {}).get("values", {})
    entry = values.get(block, {}).get("value", {})
    return entry if isinstance(entry, dict) else {}


def _selected(view: dict[str, Any], block: str) -> str | None:
    option = _state(view, block).get("selected_option")
    return str(option["value"]) if isinstance(option, dict) and "value" in option else None


def read_video_form(view: dict[str, Any]) -> VideoForm:
    files = _state(view, "image").get("files") or []
    checked = _state(view, "watermark").get("selected_options") or []
    return VideoForm(
        prompt=str(_state(view, "prompt").get("value") or ""),
        model=_selected(view, "model"),
        duration=_selected(view, "duration"),
        aspect_ratio=_selected(view, "aspect_ratio"),
        keep_watermark=any(o.get("value") == "keep" for o in checked if isinstance(o, dict)),
        files=[f for f in files if isinstance(f, dict)],
        channel=_state(view, "channel").get("selected_conversation") or None,
        metadata=read_metadata(view),
        quality=_selected(view, "quality"),
        audio=_selected(view, "audio"),
    )


def image_problem(file: dict[str, Any]) -> str | None:
    """Why a Slack file cannot be the first frame (None when it can)."""
    mimetype = str(file.get("mimetype") or "")
    if mimetype and mimetype not in IMAGE_TYPES:
        return "The image must be a jpg, png or webp file."
    size = file.get("size")
    if isinstance(size, int) and size > IMAGE_MAX_BYTES:
        return "The image must be at most 10 MB."
    return None


def remix_modal(job_id: str, prompt: str, model: str, channel: str | None) -> dict[str, Any]:
    """A small modal that asks what to change in a delivered video."""
    return {
        "type": "modal",
        "callback_id": REMIX_MODAL,
        "title": _text("Remix the video"),
        "submit": _text("Remix"),
        "close": _text("Cancel"),
        "private_metadata": _metadata({"job": job_id, "channel": channel}),
        "blocks": [
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": short(f"Remixing with `{model}`: _{prompt}_", 2000)}
                ],
            },
            {
                "type": "input",
                "block_id": "prompt",
                "label": _text("What should change?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": _PROMPT_MAX,
                    "placeholder": _text("Make it night time, with neon reflections"),
                },
            },
        ],
    }


def read_remix_form(view: dict[str, Any]) -> tuple[str, str, str | None]:
    """(job id, prompt, channel) from a submitted remix modal."""
    meta = read_metadata(view)
    prompt = str(_state(view, "prompt").get("value") or "")
    channel = meta.get("channel")
    return str(meta.get("job", "")), prompt, str(channel) if channel else None
