"""`sora-bot models [--json]` and `sora-bot quote "<text>" [--json]`: what can be ordered now,
and what a request would cost — nothing is held or sent.

Both price from the freshest price list this installation has without calling out: the last
good copy a running bot saved in the database (`DATABASE_URL`, read only when the file
exists), else the snapshot shipped in the package. A running bot refreshes that copy from
EvoLink every `PRICE_REFRESH_MINUTES`.

Output contract (JSON): amounts are JSON numbers in their exact decimal form (as held, at most
three decimals; sora_bot/output.py), plus `pricing_version`, the price list they came from.
- `models --json`: an array, one object per catalog model that can be ordered directly:
  `model`, `label`, `durations`, `aspect_ratios`, `options` (what else it takes: `quality`
  values, `audio`, `image`, `resize`), `price_options` (the options that change its price),
  `default_request` (duration, aspect_ratio, quality, audio), `credits` (for that request),
  `available` (EvoLink's price list offers it now), `pricing_version`.
- `quote --json`: `model`, `prompt`, `duration`, `aspect_ratio`, `credits`, and
  `price_options` (every option that changes this model's price, with this request's value),
  `pricing_version`, `settlement_basis`; invalid input prints `{"error": "…"}`, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bot.domain.catalog import Catalog, ModelSpec
from bot.domain.errors import BotError
from bot.domain.grammar import parse_request
from bot.domain.models import VideoRequest, fmt_credits
from bot.domain.offer import Choices, is_offered, quote_choices, quote_request
from bot.domain.pricing import PriceList
from bot.infra.config import Settings
from sora_bot.output import dumps


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser("models", help="the models that can be ordered now, with prices")
    models.add_argument("--json", action="store_true")


async def _saved_prices(settings: Settings) -> PriceList:
    from bot.infra.store import open_store
    from bot.services.prices import PriceBook

    store = await open_store(settings.database_url, pool_size=1)
    try:
        book = PriceBook(store, None)
        await book.load_saved()
        return book.current
    finally:
        await store.close()


def current_prices(settings: Settings) -> PriceList:
    """The database's saved copy when there is one (and newer), else the shipped snapshot."""
    if settings.database_path != ":memory:" and settings.database_exists():
        return asyncio.run(_saved_prices(settings))
    return PriceList.load()


def _value(request: VideoRequest, option: str) -> Any:
    if option == "image":
        return 1 if request.image_url else 0
    value: Any = getattr(request, option)
    return value


def quote_payload(catalog: Catalog, prices: PriceList, request: VideoRequest) -> dict[str, Any]:
    price = quote_request(catalog, prices, request)
    payload: dict[str, Any] = {
        "model": request.model,
        "prompt": request.prompt,
        "duration": request.duration,
        "aspect_ratio": request.aspect_ratio,
        "credits": price.credits,
    }
    if request.quality is not None:
        payload["quality"] = request.quality
    if request.audio is not None:
        payload["audio"] = request.audio
    payload["price_options"] = {o: _value(request, o) for o in price.price_options}
    payload["pricing_version"] = price.pricing_version
    payload["settlement_basis"] = price.settlement_basis
    return payload


def _shown(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def run_quote(settings: Settings, text: str, as_json: bool) -> int:
    catalog = Catalog.load(settings.catalog_path)
    prices = current_prices(settings)
    try:
        request = parse_request(text, catalog, settings.default_model)
        payload = quote_payload(catalog, prices, request)
    except BotError as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}))
        else:
            print(f"✗ {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(dumps(payload, indent=None))
        return 0
    extras = "".join(f", {k} {v}" for k, v in payload["price_options"].items() if k != "duration")
    print(
        f"{request.model}, {request.duration}s, {request.aspect_ratio}{extras}: "
        f"{fmt_credits(payload['credits'])} credits "
        f"({payload['pricing_version']})"
    )
    return 0


def model_entry(catalog: Catalog, prices: PriceList, spec: ModelSpec) -> dict[str, Any]:
    """One `models --json` object."""
    options: dict[str, Any] = {}
    if spec.qualities:
        options["quality"] = list(spec.qualities)
    if spec.audio_option:
        options["audio"] = [True, False]
    if spec.image_input:
        options["image"] = {"max": spec.max_images, "required": spec.image_required}
    if spec.watermark_option:
        options["watermark"] = [True, False]
    if spec.resize_modes:
        options["resize"] = list(spec.resize_modes)
    defaults = Choices.defaults(spec)
    default_request: dict[str, Any] = {
        "duration": spec.default_duration,
        "aspect_ratio": spec.default_aspect_ratio,
    }
    if defaults.quality is not None:
        default_request["quality"] = defaults.quality
    if defaults.audio is not None:
        default_request["audio"] = defaults.audio
    entry: dict[str, Any] = {
        "model": spec.name,
        "label": spec.label,
        "durations": list(spec.durations),
        "aspect_ratios": list(spec.aspect_ratios),
        "options": options,
        "default_request": default_request,
        "credits": None,
        "available": is_offered(prices, spec.name),
        "price_options": [],
        "pricing_version": prices.meta.pricing_version,
    }
    if entry["available"]:
        try:
            price = quote_choices(catalog, prices, spec, defaults)
        except BotError:
            entry["available"] = False
        else:
            entry["credits"] = price.credits
            entry["price_options"] = list(price.price_options)
    return entry


def run_models(settings: Settings, as_json: bool) -> int:
    catalog = Catalog.load(settings.catalog_path)
    prices = current_prices(settings)
    entries = [model_entry(catalog, prices, s) for s in catalog.models if s.selectable]
    if as_json:
        print(dumps(entries))
        return 0
    default = settings.default_model.casefold()
    print(f"Models (price list {prices.meta.pricing_version}, {prices.source}):")
    for e in entries:
        mark = " (default)" if e["model"].casefold() == default else ""
        if not e["available"]:
            print(f"  {e['model']}{mark}: not offered by EvoLink now")
            continue
        shown = ", ".join(f"{k} {_shown(v)}" for k, v in e["default_request"].items())
        print(
            f"  {e['model']}{mark}: {e['label']}; {', '.join(map(str, e['durations']))} s; "
            f"{', '.join(e['aspect_ratios'])}; {e['credits']} credits for {shown}"
        )
    return 0
