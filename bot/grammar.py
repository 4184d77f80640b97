"""The one text grammar for video requests: Slack, the console and Discord's `prompt` option.

    /sora a paper boat on a rainy street --duration 10 --ar landscape --model sora-2

Text → `VideoRequest` in two steps: `parse_request` finds the flags and the prompt, then hands
them to `build_request`, which is also the structured path (Discord options, the service's
remix). There is therefore exactly one place that validates a request against the catalog.

Grammar (option names are case-insensitive, `_` may stand for `-`, `--name=value` works too):
- `--duration/--seconds/-d N` (`10`, `10s`, `10 sec` as one token), `--ar/--aspect/
  --aspect-ratio/--ratio X` (`16:9`, `landscape`, `1280x720`… translated to the model's own
  spelling), `--landscape`, `--portrait`, `--model/-m M`, `--image/--img URL`,
  `--watermark` (keep it) / `--no-watermark` (remove it), `--resize pad|crop`.
- Everything else is the prompt, whitespace-normalised to single spaces.
- A token that starts with `--` and a letter is an option: an unknown one is an error (so a
  typo never leaks into a paid prompt). A single `-` is an option only for a known short name
  (`-d`, `-m`, `-ar`), so prose like `-20°C` stays prose. Phones and Slack turn `--` into `—`
  or `–`: a token starting with those dashes is an option when it names a known one, and prose
  (`a cat —and a dog`) otherwise.
- A repeated option with the same value is fine; with different values (`-d 10 … -d 15`,
  `--landscape --ar 9:16`) it is an error, because guessing which one was meant costs money.

Hostile text: control characters (NUL…), lone surrogates and invisible format characters
(zero-width spaces, bidi overrides, tag characters) are removed everywhere; the zero-width
joiners (emoji sequences, Persian) survive in the prompt but not inside option names or
values. The text is NFC-normalised; option names and values are also NFKC-normalised, so
full-width `－－ｄｕｒａｔｉｏｎ １０` works. Input longer than `MAX_TEXT_CHARS` is refused before
any other work. Every refusal is an `InputError` naming the field and the valid values.

Image links typed by a user (`--image URL`) must name a public host: loopback, private,
link-local, reserved and other non-global addresses (in any IPv4 spelling: `127.1`,
`0x7f000001`, `2130706433`; IPv4-mapped IPv6) and local names (`localhost`, `*.local`,
`*.internal`, single-label names) are refused — EvoLink could not fetch them, and the bot must
never help point a fetcher at an internal address. The bot itself never fetches such a link.
Image links a platform hands over next to the text (a Discord attachment's CDN link, the
bot's own `/media` link for a Slack image) are the platform's, not the user's, and are not
subject to this rule (tests serve them from 127.0.0.1).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from bot.catalog import Catalog, ModelSpec, join_choices
from bot.errors import InputError
from bot.hosts import refuse_internal_host
from bot.models import VideoRequest

MAX_TEXT_CHARS = 12_000  # above every model's prompt limit plus flags; bounds all later work
MAX_URL_CHARS = 2048
_JOINERS = frozenset("\u200c\u200d")  # ZWNJ / ZWJ: meaningful inside words and emoji
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_QUOTE_PAIRS = {'"': '"', "“": "”", "„": "“", "«": "»", "「": "」"}
_DURATION_RE = re.compile(r"(\d{1,4})\s*(?:s|sec|secs|second|seconds)?", re.ASCII)
_TASK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", re.ASCII)
_SLACK_LINK_RE = re.compile(r"<([^<>|]+)(?:\|[^<>]*)?>")
_TRUE_WORDS = frozenset({"yes", "y", "true", "on", "keep", "1"})
_FALSE_WORDS = frozenset({"no", "n", "false", "off", "remove", "0"})

_Canon = Callable[[str], str]
Field_ = Literal["duration", "aspect_ratio", "model", "image_url", "watermark", "resize_mode"]


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
        help="16:9, 9:16, landscape or portrait",
    ),
    _Option("aspect_ratio", ("landscape",), implied="landscape", help="same as --ar landscape"),
    _Option("aspect_ratio", ("portrait",), implied="portrait", help="same as --ar portrait"),
    _Option("model", ("model",), ("m",), "MODEL", help="which video model"),
    _Option(
        "image_url",
        ("image", "img", "image-url"),
        (),
        "URL",
        help="public http(s) image as the first frame",
    ),
    _Option("watermark", ("watermark",), implied="keep", help="keep the watermark (cheaper)"),
    _Option("watermark", ("no-watermark",), implied="remove", help="remove the watermark"),
    _Option(
        "resize_mode",
        ("resize", "resize-mode"),
        (),
        "pad|crop",
        help="fit an image whose size does not match the ratio",
    ),
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
}


# -- text hygiene ------------------------------------------------------------------------


def _visible(text: str, *, keep_joiners: bool) -> str:
    """NFC text without controls, surrogates and invisible format characters.

    Tabs and line breaks become spaces (the prompt is whitespace-normalised anyway).
    """
    out = []
    for ch in unicodedata.normalize("NFC", text):
        cat = unicodedata.category(ch)
        if cat == "Cc":
            if ch in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85":
                out.append(" ")
        elif cat == "Cs" or (cat == "Cf" and not (keep_joiners and ch in _JOINERS)):
            continue
        else:
            out.append(ch)
    return "".join(out)


def _value_text(token: str) -> str:
    """An option value in comparable form: no joiners, NFKC, without surrounding quotes."""
    text = unicodedata.normalize("NFKC", "".join(ch for ch in token if ch not in _JOINERS))
    return _unquote(text.strip())


def _unquote(text: str) -> str:
    for opening, closing in (*_QUOTE_PAIRS.items(), ("'", "'"), ("‘", "’")):
        inner = text[len(opening) : -len(closing)]
        if (
            len(text) >= 2
            and text.startswith(opening)
            and text.endswith(closing)
            and opening not in inner
            and closing not in inner
        ):
            return inner.strip()
    return text


def clean_prompt(text: str) -> str:
    """The prompt as sent: visible characters, single spaces, one pair of outer quotes dropped."""
    prompt = " ".join(_visible(text, keep_joiners=True).split())
    stripped = True
    while stripped:  # until stable, so cleaning a cleaned prompt changes nothing
        stripped = False
        for opening, closing in _QUOTE_PAIRS.items():
            inner = prompt[1:-1]
            if (
                len(prompt) >= 2
                and prompt[0] == opening
                and prompt[-1] == closing
                and opening not in inner
                and closing not in inner
            ):
                prompt, stripped = inner.strip(), True
    return prompt


def _too_long(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"That message is {len(text):,} characters long; the most a request may be is "
            f"{MAX_TEXT_CHARS:,}. Shorten the prompt.",
            field="prompt",
        )


# -- text → flags + prompt ---------------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    option: _Option
    typed: str  # as the user wrote it, for messages
    inline_value: str | None  # from `--name=value`


def _as_flag(token: str) -> _Flag | None:
    """The option a token names, None for prose; InputError for an unknown `--name`."""
    plain = unicodedata.normalize("NFKC", "".join(ch for ch in token if ch not in _JOINERS))
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
    """The prose (cleaned later by `build_request`) and every option value, per field, as
    (value, how it was typed)."""
    found: dict[str, list[tuple[str, str]]] = {}
    prose: list[str] = []
    tokens = _visible(text, keep_joiners=True).split()
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
        "duration": "10",
        "aspect_ratio": "16:9",
        "model": "sora-2",
        "image_url": "https://example.com/first-frame.png",
        "resize_mode": "pad",
    }.get(opt.field, "…")


def _switch_value(flag: _Flag, value: str) -> str:
    """`--watermark=no` → remove, `--no-watermark=yes` → remove, `--landscape=…` refused."""
    word = _value_text(value).casefold()
    if flag.option.field != "watermark" or word not in _TRUE_WORDS | _FALSE_WORDS:
        raise InputError(
            f"{flag.typed} takes no value like {value!r}; write just {flag.typed}.",
            field=flag.option.field,
        )
    keep = (word in _TRUE_WORDS) == (flag.option.implied == "keep")
    return "keep" if keep else "remove"


# -- the one validation ------------------------------------------------------------------


def parse_request(
    text: str,
    catalog: Catalog,
    default_model: str,
    *,
    model: str | None = None,
    duration: int | str | None = None,
    aspect_ratio: str | None = None,
    image_url: str | None = None,
    watermark: bool | None = None,
    resize_mode: str | None = None,
    base_video_task_id: str | None = None,
) -> VideoRequest:
    """A request typed as text, e.g. ``a cat playing piano --duration 10 --ar landscape``.

    The keywords are structured values a platform sent next to the text (Discord's
    `duration`, `model`… beside `prompt`): they are merged with the flags in the text, and
    an option given both ways must agree. Same meanings as `build_request`.
    """
    _too_long(text)
    prompt, found = _split(text)
    for typed_url, _where in found.get("image_url", []):
        refuse_internal_host(_image_link(typed_url))
    structured: dict[str, str | None] = {
        "model": model,
        "duration": None if duration is None else str(duration),
        "aspect_ratio": aspect_ratio,
        "image_url": image_url,
        "watermark": None if watermark is None else ("keep" if watermark else "remove"),
        "resize_mode": resize_mode,
    }
    for field, value in structured.items():
        if value is not None:
            found.setdefault(field, []).append((value, f"the {field} option"))
    chosen = _single("model", found, lambda v: _value_text(v).casefold())
    spec = catalog.get(chosen if chosen is not None else default_model)

    def ratio_canon(v: str) -> str:
        return spec.normalize_ratio(v) or _value_text(v).casefold()

    def duration_canon(v: str) -> str:
        match = _DURATION_RE.fullmatch(_value_text(v).casefold())
        return str(int(match.group(1))) if match else _value_text(v)

    keep = _single("watermark", found, lambda v: v)
    return build_request(
        catalog,
        default_model,
        prompt=prompt,
        model=chosen,
        duration=_single("duration", found, duration_canon),
        aspect_ratio=_single("aspect_ratio", found, ratio_canon),
        image_url=_single("image_url", found, lambda v: v),
        watermark=None if keep is None else keep == "keep",
        resize_mode=_single("resize_mode", found, lambda v: _value_text(v).casefold()),
        base_video_task_id=base_video_task_id,
    )


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


def build_request(
    catalog: Catalog,
    default_model: str,
    *,
    prompt: str,
    model: str | None = None,
    duration: int | str | None = None,
    aspect_ratio: str | None = None,
    image_url: str | None = None,
    watermark: bool | None = None,
    resize_mode: str | None = None,
    base_video_task_id: str | None = None,
) -> VideoRequest:
    """A request from structured values, checked against the catalog; `watermark=True` keeps it."""
    _too_long(prompt)
    spec = catalog.get(model if model is not None else default_model)
    base = _base_task(spec, catalog, base_video_task_id)
    text = _prompt(spec, prompt)
    seconds = _duration(spec, duration)
    ratio = _aspect_ratio(spec, aspect_ratio)
    image = None if image_url is None else _image(spec, catalog, image_url)
    if watermark is not None and not spec.watermark_option:
        raise InputError(
            f"{spec.name} has no watermark option; leave out --watermark / --no-watermark.",
            field="watermark",
        )
    remove = (not watermark) if watermark is not None else spec.remove_watermark_default
    resize = None if resize_mode is None else _resize(spec, catalog, resize_mode)
    return VideoRequest(
        model=spec.name,
        prompt=text,
        duration=seconds,
        aspect_ratio=ratio,
        image_url=image,
        remove_watermark=remove,
        resize_mode=resize,
        base_video_task_id=base,
    )


def _prompt(spec: ModelSpec, prompt: str) -> str:
    text = clean_prompt(prompt)
    if not text:
        raise InputError(
            "Say what the video should show, e.g. a paper boat on a rainy street --duration "
            f"{spec.default_duration}",
            field="prompt",
        )
    if len(text) > spec.prompt_max_chars:
        raise InputError(
            f"The prompt is {len(text):,} characters long; {spec.name} takes at most "
            f"{spec.prompt_max_chars:,}. Shorten it by {len(text) - spec.prompt_max_chars:,}.",
            field="prompt",
        )
    return text


def _duration(spec: ModelSpec, duration: int | str | None) -> int:
    valid = [str(d) for d in spec.durations]
    if duration is None:
        return spec.default_duration
    if isinstance(duration, bool):  # bool is an int; True is not "1 second"
        seconds = None
    elif isinstance(duration, int):
        seconds = duration
    else:
        match = _DURATION_RE.fullmatch(_value_text(duration).casefold())
        seconds = int(match.group(1)) if match else None
    if seconds is None:
        shown = str(duration) if len(str(duration)) <= 20 else str(duration)[:20] + "…"
        raise InputError(
            f"Duration {shown!r} is not a number of seconds. "
            f"{spec.name} offers {join_choices(spec.durations)}.",
            field="duration",
            valid=valid,
        )
    if seconds not in spec.durations:
        raise InputError(
            f"Duration {seconds} is not available for {spec.name}. "
            f"Choose {join_choices(spec.durations)}.",
            field="duration",
            valid=valid,
        )
    return seconds


def _aspect_ratio(spec: ModelSpec, aspect_ratio: str | None) -> str:
    if aspect_ratio is None:
        return spec.default_aspect_ratio
    ratio = spec.normalize_ratio(_value_text(aspect_ratio))
    if ratio is None:
        shown = aspect_ratio if len(aspect_ratio) <= 20 else aspect_ratio[:20] + "…"
        raise InputError(
            f"Aspect ratio {shown!r} is not available for {spec.name}. "
            f"Choose {join_choices(spec.aspect_ratios)} (or landscape / portrait).",
            field="aspect_ratio",
            valid=spec.ratio_spellings(),
        )
    return ratio


def _image(spec: ModelSpec, catalog: Catalog, image_url: str) -> str:
    with_images = [s.name for s in catalog.models if s.image_input and s.selectable]
    if not spec.image_input:
        raise InputError(
            f"{spec.name} does not take an image. Models that do: {', '.join(with_images)}.",
            field="image_url",
            valid=with_images,
        )
    url = _image_link(image_url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not host
        or len(url) > MAX_URL_CHARS
        or any(ch.isspace() for ch in url)
    ):
        shown = url if len(url) <= 60 else url[:60] + "…"
        raise InputError(
            f"--image needs a public http(s) link to a jpg, png or webp image "
            f"(at most {MAX_URL_CHARS} characters), got {shown!r}.",
            field="image_url",
        )
    return url


def _image_link(image_url: str) -> str:
    url = _unquote(_visible(image_url, keep_joiners=False).strip())  # NFC only: keep the URL
    slack = _SLACK_LINK_RE.fullmatch(url)  # Slack sends links as <https://x|label>
    return (slack.group(1) if slack else url).strip("<>")


def _resize(spec: ModelSpec, catalog: Catalog, resize_mode: str) -> str:
    if not spec.resize_modes:
        with_resize = [s.name for s in catalog.models if s.resize_modes]
        raise InputError(
            f"{spec.name} has no resize option. Models that do: {', '.join(with_resize)}.",
            field="resize_mode",
            valid=with_resize,
        )
    mode = _value_text(resize_mode).casefold()
    if mode not in spec.resize_modes:
        shown = resize_mode if len(resize_mode) <= 20 else resize_mode[:20] + "…"
        raise InputError(
            f"Resize mode {shown!r} is not available; choose {join_choices(spec.resize_modes)}.",
            field="resize_mode",
            valid=list(spec.resize_modes),
        )
    return mode


def _base_task(spec: ModelSpec, catalog: Catalog, base_video_task_id: str | None) -> str | None:
    if spec.requires_base_task and base_video_task_id is None:
        valid = catalog.names(selectable_only=True)
        raise InputError(
            f"{spec.name} changes an earlier video and cannot be ordered on its own: use Remix "
            f"on a finished video, or choose one of: {', '.join(valid)}.",
            field="model",
            valid=valid,
        )
    if base_video_task_id is None:
        return None
    if not spec.requires_base_task:
        remix = catalog.remix_model_for(spec.name)
        hint = f" Use {remix} to remix its videos." if remix else ""
        raise InputError(
            f"{spec.name} cannot remix an earlier video.{hint}", field="base_video_task_id"
        )
    task_id = base_video_task_id.strip()
    if not _TASK_ID_RE.fullmatch(task_id):
        raise InputError("That is not an EvoLink task id to remix.", field="base_video_task_id")
    return task_id


# -- chat commands and help --------------------------------------------------------------


def visible_text(text: str, *, keep_joiners: bool) -> str:
    """`text` without control, format and zero-width characters (for other parsers)."""
    return _visible(text, keep_joiners=keep_joiners)
