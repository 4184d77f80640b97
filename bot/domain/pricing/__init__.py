"""Credits that match EvoLink's bill: a calculator for EvoLink's published price rules.

    prices = PriceList.load()                      # bot/data/pricing-rules.json (shipped)
    sora = prices.model("sora-2-preview")          # ModelPricing; PricingError if unknown
    sora.offered                                   # True: active, available, published
    sora.variables["duration"].choices             # ("4", "8", "12")
    quote = sora.quote({"duration": 8})            # Quote
    quote.credits, quote.uc, quote.breakdown       # Decimal("46.08"), 460800, {...}
    quote.pricing_version, quote.settlement_basis  # "prc_8f4a...", "request_only"

The rules: each model has variables (`parameters[]`) and priced components; a component
charges `quantity_rule` units (an expression, bot/domain/pricing/expressions.py) at its `rate`,
unless its `condition` is false, at the rate of the tier whose `when` holds, rounded at its
`rounding` point and mode, at least its `minimum_charge` (bot/domain/pricing/quote.py has the exact
algorithm); money is integer uc, 1 credit = 10,000 uc. The shipped list is a snapshot of the
video models of EvoLink's public list (`GET /v1/catalog/pricing-rules?view=full`), made by
`python scripts/make_price_snapshot.py <capture.json>`; its `meta` keeps the capture's
`catalog_version`, `pricing_version`, `updated_at` and `fresh_until`.

Prices are EvoLink's public defaults (account discounts are not in the list). What a quote
means depends on `settlement_basis`: "request_only" is the charge; "request_then_actual" is
what EvoLink reserves (the final charge follows the actual output); "actual_usage" is an
estimate from the expected usage given.

How a request's options map to the rules' variables (each model declares only some of them;
`ModelPricing.variables` says which, of what type, and which values it prices):
- duration (seconds asked for) -> `duration` (sora-2-preview: an enum "4"/"8"/"12", an int
  is accepted; Seedance 2.5: an integer, -1 = automatic, priced from `duration_seconds`, the
  expected length), else `duration_seconds`, else `output_seconds` (the generated length, for
  models that price input + output seconds);
- quality / resolution ("720p", "1080p", "4k", ...) -> `quality`;
- audio on/off -> `generate_audio` (boolean; Seedance 1.5, Veo 3.1, Wan 2.6 flash) or `sound`
  ("on"/"off"; Kling v3 / O3);
- number of images attached -> `input_images` (Grok Imagine video) or `image_count`
  (MiniMax H3 reference-to-video);
- number of videos -> `video_count` (Veo 3.1);
- a reference/input video's length -> `input_seconds` (and `first_input_video_seconds`,
  `source_output_seconds` where declared); an upscale's length and frame rate ->
  `output_seconds`, `output_fps`; web searches -> `search_count`. Their listed defaults are
  assumptions (e.g. 30 s of input for seedance-2.5-video-edit, an upper-end price): give the
  real lengths;
- expected tokens (Gemini Omni, actual_usage) -> `input_tokens`, `video_output_tokens`,
  `other_output_tokens` (must be given: no default is taken for usage);
- watermark, aspect ratio, image links, prompt: not pricing variables of any video model in
  the 2026-10-10 list (they do not change the price).

Invariant: nothing here prices by guess — an unknown operator, rounding or variable type, an
unknown or missing variable, a value the rules do not price, a model not offered, each is a
`PricingError` (a `bot.domain.errors.BotError`) naming it. Arithmetic is exact (`fractions.Fraction`
inside, integer uc and `decimal.Decimal` credits out); no float is accepted or produced.
"""

from __future__ import annotations

from bot.domain.pricing.errors import PricingError
from bot.domain.pricing.expressions import OPERATORS, Expr, Value
from bot.domain.pricing.pricelist import ModelPricing, PriceList, PriceListMeta
from bot.domain.pricing.quote import Quote, QuoteLine, credits_of
from bot.domain.pricing.rules import Component, Tier, Variable

__all__ = [
    "OPERATORS",
    "Component",
    "Expr",
    "ModelPricing",
    "PriceList",
    "PriceListMeta",
    "PricingError",
    "Quote",
    "QuoteLine",
    "Tier",
    "Value",
    "Variable",
    "credits_of",
]
