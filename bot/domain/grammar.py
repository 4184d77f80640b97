"""The chat grammar for video requests: Slack, the console, the CLI and Discord's `prompt` option.

    /sora a paper boat on a rainy street --duration 8 --ar landscape --model sora-2-preview

Text → `VideoRequest` in two steps: `parse_request` finds the flags and the prompt, puts them
(merged with any structured values a platform sent alongside) into one `RequestOptions`, and
hands that to `bot.domain.requests.validate_request` — the one validation every way of making a
request goes through. This module knows spelling, not rules: which models, lengths, shapes
and image hosts are allowed is decided there.

Grammar (option names are case-insensitive, `_` may stand for `-`, `--name=value` works too):
- `--duration/--seconds/-d N` (`10`, `10s`, `10 sec` as one token), `--ar/--aspect/
  --aspect-ratio/--ratio X` (`16:9`, `landscape`, `1280x720`… translated to the model's own
  spelling), `--landscape`, `--portrait`, `--model/-m M`, `--image/--img URL`,
  `--watermark` (keep it) / `--no-watermark` (remove it), `--resize pad|crop`,
  `--quality/--resolution Q` (`1080p`), `--audio` / `--no-audio`. Which of these a model
  takes, and which values, is the catalog's (`bot.domain.requests` refuses the rest).
- Everything else is the prompt, whitespace-normalised to single spaces.
- A token that starts with `--` and a letter is an option: an unknown one is an error (so a
  typo never leaks into a paid prompt). A single `-` is an option only for a known short name
  (`-d`, `-m`, `-ar`), so prose like `-20°C` stays prose. Phones and Slack turn `--` into `—`
  or `–`: a token starting with those dashes is an option when it names a known one, and prose
  (`a cat —and a dog`) otherwise.
- A repeated option with the same value is fine; with different values (`-d 10 … -d 15`,
  `--landscape --ar 9:16`) it is an error, because guessing which one was meant costs money.
  The exception is `--image` for a model that takes several images (the catalog's
  `max_images`, e.g. reference-to-video): each distinct link is one more image, in order.

Hostile text is cleaned by `bot.domain.text` (controls, invisible characters, NFC/NFKC) and input
longer than `MAX_TEXT_CHARS` is refused before any other work. Every refusal is an
`InputError` naming the field and the valid values.

An `--image` link in the text is the user's: it must name a public host, however the platform
marks the structured values sent with it. Only a link the platform itself handed over next to
the text (a Discord attachment) keeps `image_from_platform` (see `bot.domain.requests`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.models import VideoRequest
from bot.domain.requests import (
    DURATION_RE,
    OwnMedia,
    RequestOptions,
    validate_request,
)
from bot.domain.text import (
    MAX_TEXT_CHARS,
    clean_prompt,
    refuse_too_long,
    value_text,
    visible_text,
    without_joiners,
)

__all__ = [
    "MAX_TEXT_CHARS",
    "OPTIONS",
    "clean_prompt",
    "option_summary",
    "parse_request",
    "visible_text",
]

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_TRUE_WORDS = frozenset({"yes", "y", "true", "on", "keep", "1"})
_FALSE_WORDS = frozenset({"no", "n", "false", "off", "remove", "0"})

_Canon = Callable[[str], str]
Field_ = Literal[
    "duration", "aspect_ratio", "model", "image_url", "watermark", "resize_mode", "quality", "audio"
]
_SWITCH_FIELDS = {"watermark": "keep", "audio": "on"}  # field → the word for "yes"


@dataclass(frozen=True)
class _Option:
    field: Field_
    names: tuple[str, ...]  # long names, typed after `--`
    shorts: tuple[str, ...] = ()  # typed after a single `-`
    metavar: str | None = None  # None: a switch that takes no value (but accepts `=value`)
    implied: str = ""  # the value a switch stands for
    help: str = ""


OPTIONS: tuple[_Option, ...] = (
    _Option("duration", ("duration", "seconds"), ("d",), "N", help="length in seconds"),
    _Option(
        "aspect_ratio",
        ("ar", "aspect", "aspect-ratio", "ratio"),
        ("ar",),
        "RATIO",
        help="16:9, 9:16, 1:1, 21:9…, landscape or portrait (as the model offers)",
    ),
    _Option("aspect_ratio", ("landscape",), implied="landscape", help="same as --ar landscape"),
    _Option("aspect_ratio", ("portrait",), implied="portrait", help="same as --ar portrait"),
    _Option("model", ("model",), ("m",), "MODEL", help="which video model"),
    _Option(
        "image_url",
        ("image", "img", "image-url"),
        (),
        "URL",
        help="public http(s) image: the first frame or a reference, as the model takes",
    ),
    _Option(
        "watermark",
        ("watermark",),
        implied="keep",
        help="keep the watermark (models with the option)",
    ),
    _Option("watermark", ("no-watermark",), implied="remove", help="remove the watermark"),
    _Option(
        "resize_mode",
        ("resize", "resize-mode"),
        (),
        "pad|crop",
        help="fit an image whose size does not match the ratio",
    ),
    _Option(
        "quality",
        ("quality", "resolution", "res"),
        ("q",),
        "Q",
        help="output quality, e.g. 720p, 1080p, 4k (as the model offers)",
    ),
    _Option("audio", ("audio", "sound"), implied="on", help="generate audio"),
    _Option("audio", ("no-audio", "no-sound", "mute"), implied="off", help="no audio"),
)
_LONG = {name: opt for opt in OPTIONS for name in opt.names}
_SHORT = {name: opt for opt in OPTIONS for name in opt.shorts}
_FIELD_LABEL = {
    "duration": "--duration",
    "aspect_ratio": "--ar",
    "model": "--model",
    "image_url": "--image",
    "watermark": "--watermark",
    "resize_mode": "--resize",
    "quality": "--quality",
    "audio": "--audio",
}


# -- text → flags + prompt ---------------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    option: _Option
    typed: str  # as the user wrote it, for messages
    inline_value: str | None  # from `--name=value`


def _as_flag(token: str) -> _Flag | None:
    """The option a token names, None for prose; InputError for an unknown `--name`."""
    plain = unicodedata.normalize("NFKC", without_joiners(token))
    body = plain.lstrip(_DASHES)
    dashes = plain[: len(plain) - len(body)]
    if not dashes or not body[:1].isalpha():
        return None
    name, eq, value = body.partition("=")
    key = name.casefold().replace("_", "-")
    inline = value if eq else None
    ascii_long = dashes == "--"
    if dashes == "-":
        option = _SHORT.get(key)
        return _Flag(option, f"-{name}", inline) if option else None
    option = _LONG.get(key)
    if option is not None:
        return _Flag(option, f"--{name}", inline)
    if ascii_long:
        shown = name if len(name) <= 30 else name[:30] + "…"
        raise InputError(
            f"Unknown option --{shown}. Options: {option_summary()}.",
            field="option",
            valid=[f"--{n}" for n in _LONG],
        )
    return None  # `—and`, `---`: a dash in prose


def option_summary() -> str:
    """`--duration N (-d, --seconds), --ar RATIO (…), …` for errors and help."""
    parts = []
    for opt in OPTIONS:
        head = f"--{opt.names[0]}" + (f" {opt.metavar}" if opt.metavar else "")
        aliases = [f"--{n}" for n in opt.names[1:]] + [f"-{s}" for s in opt.shorts]
        parts.append(head + (f" ({', '.join(aliases)})" if aliases else ""))
    return ", ".join(parts)


def _split(text: str) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    """The prose (cleaned later by `validate_request`) and every option value, per field, as
    (value, how it was typed)."""
    found: dict[str, list[tuple[str, str]]] = {}
    prose: list[str] = []
    tokens = visible_text(text, keep_joiners=True).split()
    # A pasted "/sora …" (console, `sora-bot quote`) means the same as the text after it.
    i = 1 if tokens and unicodedata.normalize("NFKC", tokens[0]).casefold() == "/sora" else 0
    while i < len(tokens):
        flag = _as_flag(tokens[i])
        i += 1
        if flag is None:
            prose.append(tokens[i - 1])
            continue
        opt = flag.option
        if flag.inline_value is not None:
            value = flag.inline_value
        elif opt.metavar is None:
            value = opt.implied
        elif i < len(tokens) and _as_flag(tokens[i]) is None:
            value = tokens[i]
            i += 1
        else:
            raise InputError(
                f"{flag.typed} needs a value, e.g. {flag.typed} {_example(opt)}.",
                field=opt.field,
            )
        if opt.metavar is None and flag.inline_value is not None:
            value = _switch_value(flag, value)
        found.setdefault(opt.field, []).append((value, flag.typed))
    return " ".join(prose), found


def _example(opt: _Option) -> str:
    return {
        "duration": "8",
        "aspect_ratio": "16:9",
        "model": "sora-2-preview",
        "image_url": "https://example.com/first-frame.png",
        "resize_mode": "pad",
        "quality": "1080p",
    }.get(opt.field, "…")


def _switch_value(flag: _Flag, value: str) -> str:
    """`--watermark=no` → remove, `--no-watermark=yes` → remove, `--audio=off` → off,
    `--landscape=…` refused."""
    word = value_text(value).casefold()
    field = flag.option.field
    if field not in _SWITCH_FIELDS or word not in _TRUE_WORDS | _FALSE_WORDS:
        raise InputError(
            f"{flag.typed} takes no value like {value!r}; write just {flag.typed}.",
            field=field,
        )
    yes = _SWITCH_FIELDS[field]
    keep = (word in _TRUE_WORDS) == (flag.option.implied == yes)
    if field == "audio":
        return "on" if keep else "off"
    return "keep" if keep else "remove"


# -- flags + structured values → options → the one validation ----------------------------


def parse_request(
    text: str,
    catalog: Catalog,
    default_model: str,
    alongside: RequestOptions | None = None,
    *,
    own_media: OwnMedia | None = None,
) -> VideoRequest:
    """A request typed as text, e.g. ``a cat playing piano --duration 10 --ar landscape``.

    `alongside` holds structured values a platform sent next to the text (Discord's
    `duration`, `model`, attachment… beside `prompt`; its own `prompt` must be empty): they
    are merged with the flags in the text, and an option given both ways must agree.
    """
    given = alongside if alongside is not None else RequestOptions()
    if given.prompt:
        raise ValueError("the text is the prompt; `alongside` carries only the other options")
    refuse_too_long(text)
    prompt, found = _split(text)
    structured: dict[str, str | None] = {
        "model": given.model,
        "duration": None if given.duration is None else str(given.duration),
        "aspect_ratio": given.aspect_ratio,
        "image_url": given.image_url,
        "watermark": None if given.watermark is None else ("keep" if given.watermark else "remove"),
        "resize_mode": given.resize_mode,
        "quality": given.quality,
        "audio": None if given.audio is None else ("on" if given.audio else "off"),
    }
    for field, value in structured.items():
        if value is not None:
            found.setdefault(field, []).append((value, f"the {field} option"))
    chosen = _single("model", found, lambda v: value_text(v).casefold())
    spec = catalog.get(chosen if chosen is not None else default_model)

    def ratio_canon(v: str) -> str:
        return spec.normalize_ratio(v) or value_text(v).casefold()

    def duration_canon(v: str) -> str:
        match = DURATION_RE.fullmatch(value_text(v).casefold())
        return str(int(match.group(1))) if match else value_text(v)

    keep = _single("watermark", found, lambda v: v)
    audio = _single("audio", found, lambda v: v)

    def quality_canon(v: str) -> str:
        return spec.normalize_quality(v) or value_text(v).casefold()

    options = replace(
        given,
        prompt=prompt,
        model=chosen,
        duration=_single("duration", found, duration_canon),
        aspect_ratio=_single("aspect_ratio", found, ratio_canon),
        **_images(spec.max_images, found, given),
        watermark=None if keep is None else keep == "keep",
        resize_mode=_single("resize_mode", found, lambda v: value_text(v).casefold()),
        quality=_single("quality", found, quality_canon),
        audio=None if audio is None else audio == "on",
    )
    return validate_request(options, catalog, default_model, own_media=own_media)


def _images(
    max_images: int, found: Mapping[str, list[tuple[str, str]]], given: RequestOptions
) -> dict[str, Any]:
    """`image_url`, `image_from_platform` and `more_image_urls` from the images given.

    A model that takes one image takes one value (given twice alike is fine, differently is
    an error); a model that takes several takes every distinct one, the platform's own first
    (only that one keeps `image_from_platform`: a typed link is always checked as typed)."""
    typed = [value for value, _ in found.get("image_url", [])]
    if given.image_url is not None:
        typed = typed[:-1]  # the structured value was appended last
    if max_images <= 1 or len(typed) + (given.image_url is not None) <= 1:
        return {
            "image_url": _single("image_url", found, lambda v: v),
            "image_from_platform": given.image_from_platform and not typed,
            "more_image_urls": (),
        }
    ordered = ([given.image_url] if given.image_url is not None else []) + typed
    distinct = list(dict.fromkeys(ordered))
    return {
        "image_url": distinct[0],
        "image_from_platform": given.image_from_platform and given.image_url is not None,
        "more_image_urls": tuple(distinct[1:]),
    }


def _single(field: str, found: Mapping[str, list[tuple[str, str]]], canon: _Canon) -> str | None:
    """The one value given for `field`; InputError when it was given with different values."""
    entries = found.get(field, [])
    if not entries:
        return None
    first_value, first_typed = entries[0]
    for value, typed in entries[1:]:
        if canon(value) != canon(first_value):
            raise InputError(
                f"{_FIELD_LABEL[field]} is given twice with different values: "
                f"{first_value!r} ({first_typed}) and {value!r} ({typed}). Keep one.",
                field=field,
            )
    return first_value
