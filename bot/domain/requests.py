"""The one validation of a video request: `validate_request(options, catalog, default_model)`.

Invariant: every request that reaches the job book went through `validate_request`. Every way
of making one — chat text (`bot.domain.grammar.parse_request`), Discord's slash options, the Slack
modal, a Slack "Ask an admin" button's value, the CLI's quote, a remix — puts what it was given
into one `RequestOptions` and hands it to `validate_request` (adapters through
`SoraService.parse` / `SoraService.build`); nothing else makes a `VideoRequest`. What arrives
from outside (a message, a modal, a button value) is validated however it looks, since a
button's value can be edited; a row the job book (or the approvals table) already stored was
validated when it was accepted and is read back as it is.

The rules, each refusal an `InputError` naming the field (and the valid values when few):
- model: one the catalog knows; a remix model only with a base task, a base task (a
  well-formed EvoLink task id) only for a remix model.
- prompt: at most `MAX_TEXT_CHARS` as given; after clean-up (`bot.domain.text.clean_prompt`) not
  empty and within the model's `prompt_max_chars`.
- duration and aspect ratio: ones the model offers; the ratio is stored in the model's spelling.
- image: only for a model that takes one; an http(s) link of at most `MAX_URL_CHARS` without
  whitespace, to a public host (`bot.domain.hosts`: no loopback, private, link-local, metadata or
  local names). Exempt from the host rule are only a link the platform itself handed over
  (`image_from_platform`: a Discord attachment's CDN link) and a signed link of this bot's
  own `/media` (`own_media`, e.g. a Slack image the bot re-hosted) — never a link a user
  typed or could have edited. The bot itself never fetches an image link.
- image required: an image-to-video or reference model refuses a request without one.
- quality: one the model offers (`1080p`, `1080P`, `1080` all read as `1080p`); audio: a
  choice only for a model with the option. A model with the option gets its default when
  nothing is asked, so the stored request says what was sent and priced.
- watermark: a choice only for a model with the option; resize: a mode the model offers.

Whether EvoLink offers the model now, and at what price, is `bot.domain.offer`'s (the service
asks it before anything is held).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.domain.catalog import Catalog, ModelSpec, join_choices
from bot.domain.errors import InputError
from bot.domain.hosts import refuse_internal_host
from bot.domain.models import VideoRequest
from bot.domain.text import clean_prompt, refuse_too_long, unquote, value_text, visible_text

MAX_URL_CHARS = 2048
DURATION_RE = re.compile(r"(\d{1,4})\s*(?:s|sec|secs|second|seconds)?", re.ASCII)
NEGATIVE_RE = re.compile(r"[-−]\s*\d+(?:[.,]\d+)?\s*(?:s|sec|secs|second|seconds)?", re.ASCII)
#: EvoLink takes jpg, png and webp pictures: a link whose path names another picture, video or
#: document type (`cat.gif`) is refused; one naming none (`/media/…`, `image.php?id=1`) may be
#: any of the three, and is left to EvoLink.
NOT_IMAGE_SUFFIXES = frozenset(
    {"gif", "bmp", "svg", "tif", "tiff", "heic", "heif", "avif", "ico", "psd"}
    | {"mp4", "mov", "webm", "avi", "mkv", "pdf"}
)
_TASK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", re.ASCII)
_SLACK_LINK_RE = re.compile(r"<([^<>|]+)(?:\|[^<>]*)?>")

OwnMedia = Callable[[str], bool]


@dataclass(frozen=True, kw_only=True)
class RequestOptions:
    """What someone asked for, unchecked; None means "the model's default".

    `prompt` is literal here (flags in it are prose); `bot.domain.grammar` reads flags out of text.
    `watermark=True` keeps the watermark, False removes it. `image_from_platform` is True
    only for a link the platform itself handed over (a Discord attachment), never for a
    value that passed through a user's hands (typed text, a modal field, a button value).
    """

    prompt: str = ""
    model: str | None = None
    duration: int | str | None = None
    aspect_ratio: str | None = None
    image_url: str | None = None
    image_from_platform: bool = False
    #: Further images (a model that takes several); always checked as typed.
    more_image_urls: tuple[str, ...] = ()
    watermark: bool | None = None
    resize_mode: str | None = None
    base_video_task_id: str | None = None
    quality: str | None = None
    audio: bool | None = None


def options_of(request: VideoRequest, catalog: Catalog) -> RequestOptions:
    """The options that validate back to `request` (to carry it in a button, or remake it).

    The image link loses any platform trust: whatever comes back is checked as typed."""
    spec = catalog.find(request.model)
    keep = None
    if spec is not None and spec.watermark_option and request.remove_watermark is not None:
        keep = not request.remove_watermark  # a model without the option refuses any choice
    return RequestOptions(
        prompt=request.prompt,
        model=request.model,
        duration=request.duration,
        aspect_ratio=request.aspect_ratio,
        image_url=request.image_url,
        more_image_urls=request.more_image_urls,
        watermark=keep,
        resize_mode=request.resize_mode,
        base_video_task_id=request.base_video_task_id,
        quality=request.quality,
        audio=request.audio,
    )


def remix_options(
    base: VideoRequest, remix_model: str, task_id: str, prompt: str
) -> RequestOptions:
    """A remix of a delivered video: its duration and shape, the remix model, a new prompt."""
    return RequestOptions(
        prompt=prompt,
        model=remix_model,
        duration=base.duration,
        aspect_ratio=base.aspect_ratio,
        base_video_task_id=task_id,
        quality=base.quality,
        audio=base.audio,
    )


def validate_request(
    options: RequestOptions,
    catalog: Catalog,
    default_model: str,
    *,
    own_media: OwnMedia | None = None,
) -> VideoRequest:
    """The `VideoRequest` for `options`, or the `InputError` saying what is wrong with them.

    `own_media(url)` says whether a link is a signed link of this bot's own /media (the
    service passes `MediaHost.signed`); without it every image link must name a public host.
    """
    refuse_too_long(options.prompt)
    spec = catalog.get(options.model if options.model is not None else default_model)
    base = _base_task(spec, catalog, options.base_video_task_id)
    text = _prompt(spec, options.prompt)
    seconds = _duration(spec, options.duration)
    ratio = _aspect_ratio(spec, options.aspect_ratio)
    image = None
    more: list[str] = []
    first_url = options.image_url
    rest = list(options.more_image_urls)
    if first_url is None and rest:
        first_url = rest.pop(0)
    if first_url is not None:
        image = _image(spec, catalog, first_url)
        if not (options.image_from_platform or (own_media is not None and own_media(image))):
            refuse_internal_host(image)
        _image_count(spec, catalog, 1 + len(rest))
        for extra in rest:
            url = _image(spec, catalog, extra)
            if not (own_media is not None and own_media(url)):
                refuse_internal_host(url)
            if url != image and url not in more:
                more.append(url)
    elif spec.image_required:
        raise InputError(
            f"{spec.name} makes a video from an image: add one with --image URL"
            + (f" ({spec.image_note})." if spec.image_note else "."),
            field="image_url",
        )
    quality = _quality(spec, catalog, options.quality)
    audio = _audio(spec, catalog, options.audio)
    watermark = options.watermark
    if watermark is not None and not spec.watermark_option:
        raise InputError(
            f"{spec.name} has no watermark option; leave out --watermark / --no-watermark.",
            field="watermark",
        )
    remove = (not watermark) if watermark is not None else spec.remove_watermark_default
    resize = None if options.resize_mode is None else _resize(spec, catalog, options.resize_mode)
    return VideoRequest(
        model=spec.name,
        prompt=text,
        duration=seconds,
        aspect_ratio=ratio,
        image_url=image,
        more_image_urls=tuple(more),
        remove_watermark=remove,
        resize_mode=resize,
        base_video_task_id=base,
        quality=quality,
        audio=audio,
    )


def _quality(spec: ModelSpec, catalog: Catalog, quality: str | None) -> str | None:
    if quality is None:
        return spec.default_quality
    if not spec.qualities:
        raise _no_option(spec, catalog, "quality", "--quality", lambda m: bool(m.qualities))
    found = spec.normalize_quality(value_text(quality))
    if found is None:
        shown = quality if len(quality) <= 20 else quality[:20] + "…"
        raise InputError(
            f"Quality {shown!r} is not available for {spec.name}. "
            f"Choose {join_choices(spec.qualities)}.",
            field="quality",
            valid=list(spec.qualities),
        )
    return found


def _audio(spec: ModelSpec, catalog: Catalog, audio: bool | None) -> bool | None:
    if audio is None:
        return spec.audio_default
    if not spec.audio_option:
        raise _no_option(
            spec, catalog, "audio", "--audio / --no-audio", lambda m: bool(m.audio_option)
        )
    return audio


def _no_option(
    spec: ModelSpec, catalog: Catalog, field: str, flags: str, has: Callable[[ModelSpec], bool]
) -> InputError:
    """The refusal of an option the model does not have, naming the models that have it."""
    others = [m.name for m in catalog.models if has(m) and m.selectable]
    return InputError(
        f"{spec.name} has no {field} option; leave out {flags}. "
        f"Models that have one: {', '.join(others)}.",
        field=field,
        valid=others,
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
        match = DURATION_RE.fullmatch(value_text(duration).casefold())
        seconds = int(match.group(1)) if match else None
        if match is None and NEGATIVE_RE.fullmatch(value_text(duration)):
            seconds = -1  # a negative number: said as such below
    if seconds is not None and seconds <= 0:
        raise InputError(
            f"Duration must be a positive number of seconds, not {duration!s:.20}. "
            f"{spec.name} offers {join_choices(spec.durations)}.",
            field="duration",
            valid=valid,
        )
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
    ratio = spec.normalize_ratio(value_text(aspect_ratio))
    if ratio is None:
        shown = aspect_ratio if len(aspect_ratio) <= 20 else aspect_ratio[:20] + "…"
        raise InputError(
            f"Aspect ratio {shown!r} is not available for {spec.name}. "
            f"Choose {join_choices(spec.aspect_ratios)} (or landscape / portrait).",
            field="aspect_ratio",
            valid=spec.ratio_spellings(),
        )
    return ratio


def _image_count(spec: ModelSpec, catalog: Catalog, count: int) -> None:
    if count <= spec.max_images:
        return
    several = [s.name for s in catalog.models if s.max_images > 1 and s.selectable]
    takes = "one image" if spec.max_images == 1 else f"at most {spec.max_images} images"
    raise InputError(
        f"{spec.name} takes {takes}, got {count}."
        + (f" Models that take several: {', '.join(several)}." if spec.max_images == 1 else ""),
        field="image_url",
        valid=several,
    )


def _image(spec: ModelSpec, catalog: Catalog, image_url: str) -> str:
    """The link as sent, well-formed; the host rule is `validate_request`'s."""
    with_images = [s.name for s in catalog.models if s.image_input and s.selectable]
    if not spec.image_input:
        raise InputError(
            f"{spec.name} does not take an image. Models that do: {', '.join(with_images)}.",
            field="image_url",
            valid=with_images,
        )
    url = image_link(image_url)
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
    name = parts.path.rsplit("/", 1)[-1].lower()
    kind = name.rsplit(".", 1)[-1] if "." in name else ""
    if kind in NOT_IMAGE_SUFFIXES:
        raise InputError(
            f"--image must be a jpg, png or webp picture; {name[:60]!r} is a .{kind} file.",
            field="image_url",
            valid=["jpg", "png", "webp"],
        )
    return url


def image_link(image_url: str) -> str:
    """The link in a typed image value: quotes and Slack's `<https://x|label>` unwrapped."""
    url = unquote(visible_text(image_url, keep_joiners=False).strip())  # NFC only: keep the URL
    slack = _SLACK_LINK_RE.fullmatch(url)
    return (slack.group(1) if slack else url).strip("<>")


def _resize(spec: ModelSpec, catalog: Catalog, resize_mode: str) -> str:
    if not spec.resize_modes:
        with_resize = [s.name for s in catalog.models if s.resize_modes]
        raise InputError(
            f"{spec.name} has no resize option. Models that do: {', '.join(with_resize)}.",
            field="resize_mode",
            valid=with_resize,
        )
    mode = value_text(resize_mode).casefold()
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
