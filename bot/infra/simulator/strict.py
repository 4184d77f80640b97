"""What EvoLink refuses on a submit, and what it bills (the simulator is always this strict).

A submit is checked against the served price list (bot/infra/simulator/prices.py) and the
request fields EvoLink documents per model (docs/PLATFORM-FACTS.md):
- `model`: in the list and offered (lifecycle active, pricing_status available, published);
- `duration`: a whole number the model's rules price (its `duration`, else `duration_seconds`,
  else `output_seconds` variable: range, enumeration, and values a gate allows, e.g. Veo 3.1's
  4/6/8); a model with none of them takes no duration;
- `quality` (or `resolution`): one of the rules' `quality` choices; a model without one takes
  none (sora-2-preview);
- `generate_audio` (true/false): models whose rules price it, and the Seedance 2.0/2.5
  families (free there); `sound` ("on"/"off"): models whose rules price it (Kling v3/O3);
- `image_urls`: http(s) links, at most the model's limit (sora-2-preview 1, a rule's
  `input_images`/`image_count` maximum, else 9), at least one for an image-to-video model;
- `aspect_ratio`: the model's ratios (sora-2-preview 1280x720/720x1280/16:9/9:16, else 16:9,
  9:16, 1:1, 4:3, 3:4, 21:9, adaptive);
- `resize_mode` (pad/crop) only for sora-2-preview; `remove_watermark` and
  `base_video_task_id` for no model on the list (they were sora-2's).
Other fields are ignored, as EvoLink ignores fields it does not know.

The bill: the request's fields map to the rules' variables the way the calculator documents
(bot/domain/pricing/__init__.py): duration -> `duration` | `duration_seconds` |
`output_seconds`, quality/resolution -> `quality`, generate_audio, sound, the image count ->
`input_images` | `image_count`, `n` -> `video_count`; every other variable takes its published
default. `credits_reserved` is that quote.

Invariants: a refusal is a 400 with EvoLink's envelope naming the field (`param`) and what the
model takes, and creates nothing; a quote is the calculator's, never a guess (a request the
rules cannot price is refused, not billed at 0); the charge never exceeds the reservation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from bot.domain.pricing import ModelPricing, PriceList, PricingError, Quote

SORA = "sora-2-preview"
GENERIC_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive")
RATIOS: dict[str, tuple[str, ...]] = {SORA: ("1280x720", "720x1280", "16:9", "9:16")}
MAX_IMAGES: dict[str, int] = {SORA: 1}
GENERIC_MAX_IMAGES = 9
FREE_AUDIO_PREFIXES = ("seedance-2.0-", "seedance-2.5-")
RESIZE_MODES: dict[str, tuple[str, ...]] = {SORA: ("pad", "crop")}
NO_MODEL_TAKES = ("remove_watermark", "base_video_task_id")
DURATION_VARIABLES = ("duration", "duration_seconds", "output_seconds")


class Refusal(Exception):
    """A 400: `param` is the request field at fault."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def _duration_variable(model: ModelPricing) -> str | None:
    return next((name for name in DURATION_VARIABLES if name in model.variables), None)


def image_limit(model: ModelPricing) -> int:
    if model.model_id in MAX_IMAGES:
        return MAX_IMAGES[model.model_id]
    for name in ("input_images", "image_count"):
        variable = model.variables.get(name)
        if variable is not None and variable.maximum is not None:
            return int(variable.maximum)
    return GENERIC_MAX_IMAGES


def _takes(model: ModelPricing, what: str) -> str:
    return f"{model.model_id} does not take {what}"


def request_variables(
    model: ModelPricing, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the rules' variables for this request, variable -> the request field it came from).
    Raises Refusal for a field the model does not take or a value of the wrong shape."""
    declared = model.variables
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}

    def put(variable: str, field: str, value: Any) -> None:
        values[variable] = value
        fields[variable] = field

    duration = body.get("duration")
    if duration is not None:
        if not isinstance(duration, int) or isinstance(duration, bool):
            raise Refusal("duration", "duration must be a whole number of seconds")
        variable = _duration_variable(model)
        if variable is None:
            raise Refusal("duration", _takes(model, "a duration"))
        put(variable, "duration", duration)
    for field in ("quality", "resolution"):
        if field in body:
            quality = body[field]
            if "quality" not in declared:
                raise Refusal(field, _takes(model, f"{field} (it has one output quality)"))
            if not isinstance(quality, str):
                raise Refusal(field, f"{field} must be text such as 720p")
            put("quality", field, quality)
    if "generate_audio" in body:
        audio = body["generate_audio"]
        if not isinstance(audio, bool):
            raise Refusal("generate_audio", "generate_audio must be true or false")
        if "generate_audio" in declared:
            put("generate_audio", "generate_audio", audio)
        elif not model.model_id.startswith(FREE_AUDIO_PREFIXES):
            hint = " (it takes sound: on/off)" if "sound" in declared else ""
            raise Refusal("generate_audio", _takes(model, "generate_audio") + hint)
    if "sound" in body:
        if "sound" not in declared:
            raise Refusal("sound", _takes(model, "sound"))
        put("sound", "sound", body["sound"])
    images = _images(model, body)
    for variable in ("input_images", "image_count"):
        if variable in declared:
            put(variable, "image_urls", len(images))
            break
    for field in ("n", "count"):
        if field in body:
            if "video_count" not in declared:
                raise Refusal(field, _takes(model, f"{field} (one video per task)"))
            put("video_count", field, body[field])
    ratio = body.get("aspect_ratio")
    if ratio is not None:
        ratios = RATIOS.get(model.model_id, GENERIC_RATIOS)
        if ratio not in ratios:
            raise Refusal(
                "aspect_ratio", f"aspect_ratio must be one of {', '.join(ratios)}, got {ratio!r}"
            )
    if "resize_mode" in body:
        modes = RESIZE_MODES.get(model.model_id)
        if modes is None:
            raise Refusal("resize_mode", _takes(model, "resize_mode"))
        if body["resize_mode"] not in modes:
            raise Refusal("resize_mode", f"resize_mode must be one of {', '.join(modes)}")
    for field in NO_MODEL_TAKES:
        if field in body:
            raise Refusal(field, _takes(model, field))
    return values, fields


def _images(model: ModelPricing, body: dict[str, Any]) -> list[str]:
    images = body.get("image_urls")
    if images is None:
        images = []
    if not isinstance(images, list) or not all(
        isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc
        for url in images
    ):
        raise Refusal("image_urls", "image_urls must be a list of http(s) links")
    limit = image_limit(model)
    if len(images) > limit:
        plural = "image" if limit == 1 else "images"
        raise Refusal("image_urls", f"{model.model_id} takes at most {limit} {plural}")
    if model.operation == "image_to_video" and not images:
        raise Refusal("image_urls", f"{model.model_id} needs an image in image_urls")
    return images


def admit(prices: PriceList, body: dict[str, Any]) -> tuple[ModelPricing, Quote, dict[str, Any]]:
    """(the model's rules, the quote that is reserved, the variables the request gave) for a
    submit body whose `model` and `prompt` were already checked as present; raises Refusal."""
    model_id = body["model"]
    if model_id not in prices:
        offered = ", ".join(m.model_id for m in prices if m.offered and m.modality == "video")
        raise Refusal("model", f"Unsupported model: {model_id} (available: {offered})")
    model = prices.model(model_id)
    if not model.offered:
        raise Refusal(
            "model",
            f"Model {model_id} is not available (lifecycle {model.lifecycle}, "
            f"pricing_status {model.pricing_status})",
        )
    values, fields = request_variables(model, body)
    try:
        quote = model.quote(values)
    except PricingError as exc:
        field = fields.get(exc.name or "", exc.name or "model")
        message = str(exc).replace(f"variable '{exc.name}'", field)  # the request's words
        raise Refusal(field, message) from None
    return model, quote, values


def settle_charge(
    model: ModelPricing,
    variables: dict[str, Any],
    reserved: Decimal,
    actual_seconds: Decimal | None,
) -> Decimal:
    """What a completed task costs, by the rules that priced its reservation: the reservation,
    or for a request_then_actual model given `actual_seconds` the rules' price of that output
    length (never above the reservation)."""
    if model.settlement_basis != "request_then_actual" or actual_seconds is None:
        return reserved
    actual = dict(variables)
    name = _duration_variable(model)
    if name == "duration" and model.variables[name].kind != "enum":
        actual["duration"], actual["duration_seconds"] = -1, actual_seconds  # "automatic"
    elif name is not None:
        actual[name] = actual_seconds
    try:
        charged = model.quote(actual).credits
    except PricingError:
        return reserved
    return min(charged, reserved)
