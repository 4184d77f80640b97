"""What can be ordered now, and what it costs: the catalog joined with EvoLink's price list.

    price = quote_request(catalog, prices, request)   # Price; InputError when not offered
    price.credits, price.pricing_version, price.price_options

The catalog (bot/domain/catalog.py) says what a model accepts; the price list
(bot/domain/pricing/) says whether EvoLink offers it and what a request costs. A request's
options map onto the rules' variables by the names the model's rules declare:
- duration → `duration` (an enum such as sora-2-preview's "4"/"8"/"12"), else
  `duration_seconds`, else `output_seconds`;
- quality → `quality`;
- audio → `generate_audio` (true/false), else `sound` ("on"/"off");
- the number of images sent → `input_images`, else `image_count`.
Every other variable takes its published default (e.g. `video_count` 1, `search_count` 0,
`input_seconds` 0). An option the rules do not declare does not change the price.

Invariants:
- A model is orderable only when it is in the catalog, can be ordered directly, and the price
  list offers it (present, lifecycle active, pricing_status available, published rules); any
  other is refused with an `InputError` naming the models that are.
- A quote is the rules' exact price. The rules price in whole uc (1 credit = 10,000 uc) and the
  ledger counts uc too, so what is held is exactly the rules' figure (a 1080p Kling price of
  21.6108 credits is held as 21.6108, and EvoLink's bill of it settles to zero difference);
  `held_credits` only guards a figure finer than a uc, rounding it up, never down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from bot.domain.catalog import Catalog, ModelSpec
from bot.domain.errors import InputError
from bot.domain.models import UC_PER_CREDIT, VideoRequest, from_uc
from bot.domain.pricing import ModelPricing, PriceList, PricingError

DURATION_VARIABLES = ("duration", "duration_seconds", "output_seconds")
AUDIO_VARIABLES = ("generate_audio", "sound")
IMAGE_VARIABLES = ("input_images", "image_count")


@dataclass(frozen=True)
class Price:
    """The price of one request, from one price list."""

    model: str
    credits: Decimal  # what is held: the exact price in whole uc (4 decimals)
    exact: Decimal  # the rules' own figure (up to 4 decimals)
    pricing_version: str
    settlement_basis: str
    #: The request options that change this model's price (e.g. duration, quality, audio).
    price_options: tuple[str, ...]
    #: The rule variables the price was worked out with (the rules' names and values).
    variables: dict[str, object] = field(default_factory=dict)


def held_credits(exact: Decimal) -> Decimal:
    """The uc amount held for an exact price: rounded up, never down."""
    return from_uc(int((exact * UC_PER_CREDIT).to_integral_value(rounding=ROUND_CEILING)))


def _pricing(prices: PriceList, name: str) -> ModelPricing | None:
    return prices.model(name) if name in prices else None


def is_offered(prices: PriceList, name: str) -> bool:
    pricing = _pricing(prices, name)
    return pricing is not None and pricing.offered


def orderable(catalog: Catalog, prices: PriceList) -> list[str]:
    """The catalog's models that can be ordered directly now, in catalog order."""
    return [n for n in catalog.names(selectable_only=True) if is_offered(prices, n)]


def require_offered(catalog: Catalog, prices: PriceList, name: str) -> ModelPricing:
    """The model's rules, or an InputError naming the models that can be ordered."""
    pricing = _pricing(prices, name)
    if pricing is not None and pricing.offered:
        return pricing
    valid = orderable(catalog, prices)
    why = (
        "is not in EvoLink's price list"
        if pricing is None
        else f"is not offered by EvoLink now ({pricing.lifecycle}, {pricing.pricing_status})"
    )
    choices = ", ".join(valid) if valid else "none right now"
    raise InputError(
        f"{name} {why}, so it cannot be ordered. Available models: {choices}.",
        field="model",
        valid=valid,
    )


def price_options(spec: ModelSpec, pricing: ModelPricing) -> tuple[str, ...]:
    """Which of the request's options change this model's price."""
    declared = pricing.variables
    found = []
    if any(v in declared for v in DURATION_VARIABLES):
        found.append("duration")
    if spec.qualities and "quality" in declared:
        found.append("quality")
    if spec.audio_option and any(v in declared for v in AUDIO_VARIABLES):
        found.append("audio")
    if spec.image_input and any(v in declared for v in IMAGE_VARIABLES):
        found.append("image")
    return tuple(found)


@dataclass(frozen=True)
class Choices:
    """The options that can change a price (a request's, or a model's defaults)."""

    duration: int
    quality: str | None = None
    audio: bool | None = None
    images: int = 0

    @classmethod
    def of(cls, request: VideoRequest) -> Choices:
        images = len(request.image_urls)
        return cls(request.duration, request.quality, request.audio, images)

    @classmethod
    def defaults(cls, spec: ModelSpec, duration: int | None = None) -> Choices:
        """The model's default request (at `duration`, else its default duration)."""
        seconds = spec.default_duration if duration is None else duration
        images = 1 if spec.image_required else 0
        return cls(seconds, spec.default_quality, spec.audio_default, images)


def rule_variables(choices: Choices, pricing: ModelPricing) -> dict[str, object]:
    """The options in the names of the model's pricing variables."""
    declared = pricing.variables
    found: dict[str, object] = {}
    duration = next((v for v in DURATION_VARIABLES if v in declared), None)
    if duration is not None:
        found[duration] = choices.duration
    if choices.quality is not None and "quality" in declared:
        found["quality"] = choices.quality
    if choices.audio is not None:
        if "generate_audio" in declared:
            found["generate_audio"] = choices.audio
        elif "sound" in declared:
            found["sound"] = "on" if choices.audio else "off"
    images = next((v for v in IMAGE_VARIABLES if v in declared), None)
    if images is not None:
        found[images] = choices.images
    return found


def quote_request(catalog: Catalog, prices: PriceList, request: VideoRequest) -> Price:
    """The price of `request` from `prices`; InputError when its model is not orderable."""
    return quote_choices(catalog, prices, catalog.get(request.model), Choices.of(request))


def quote_choices(catalog: Catalog, prices: PriceList, spec: ModelSpec, choices: Choices) -> Price:
    """The price of a request of `spec` with these options (see `quote_request`)."""
    pricing = require_offered(catalog, prices, spec.name)
    variables = rule_variables(choices, pricing)
    try:
        quote = pricing.quote(variables)
    except PricingError as exc:
        raise InputError(
            f"EvoLink's price list has no price for this {spec.name} request: {exc}",
            field="model",
        ) from None
    return Price(
        model=spec.name,
        credits=held_credits(quote.credits),
        exact=quote.credits,
        pricing_version=quote.pricing_version,
        settlement_basis=quote.settlement_basis,
        price_options=price_options(spec, pricing),
        variables=dict(quote.variables),
    )
