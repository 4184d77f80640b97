"""`sora-bot models [--json]` and `sora-bot quote --json`: what can be ordered now and what it
costs, from the freshest price list this installation has (the database's saved copy, else
the shipped snapshot) — and every orderable model and duration quoted exactly by the rules."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.catalog import Catalog
from bot.domain.pricing import PriceList
from bot.infra.simulator import Simulator
from sora_bot.cli import main
from tests.e2e.test_cli import run
from tests.support import running_core

CATALOG = Catalog.load()
PRICES = PriceList.load()


def _rules_price(model: str, duration: int) -> Decimal:
    """The rules' price of the model's default request at `duration`, worked out from the
    price list alone (the rules' own defaults for everything but the length)."""
    pricing = PRICES.model(model)
    name = next(v for v in ("duration", "duration_seconds") if v in pricing.variables)
    return pricing.quote({name: duration}).credits


def _quote(capsys: pytest.CaptureFixture[str], text: str) -> dict[str, object]:
    assert main(["quote", text, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert isinstance(answer, dict)
    return answer


def test_quote_of_every_orderable_model_and_duration_is_the_rules_price(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    image = " --image https://example.com/a.png"
    quoted = 0
    for spec in CATALOG.models:
        for duration in spec.durations:
            text = f"a cat -m {spec.name} -d {duration}" + (image if spec.image_required else "")
            answer = _quote(capsys, text)
            assert answer["model"] == spec.name and answer["duration"] == duration
            assert answer["credits"] == _rules_price(spec.name, duration), text
            assert answer["pricing_version"] == PRICES.meta.pricing_version
            assert isinstance(answer["price_options"], dict)
            assert answer["price_options"]["duration"] == duration
            quoted += 1
    assert quoted == sum(len(s.durations) for s in CATALOG.models)
    assert not (tmp_path / "bot.db").exists()  # nothing held, not even a store opened


def test_quote_json_names_the_options_that_change_the_price(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    model = next(  # a model whose price depends on its audio (Seedance's audio is free)
        s
        for s in CATALOG.models
        if s.audio_option
        and "1080p" in s.qualities
        and {"generate_audio", "sound"} & set(PRICES.model(s.name).variables)
    )
    answer = _quote(capsys, f"a cat -m {model.name} --quality 1080p --no-audio")
    options = answer["price_options"]
    assert isinstance(options, dict)
    assert options["quality"] == "1080p" and options["audio"] is False
    assert answer["quality"] == "1080p" and answer["audio"] is False
    # Amounts round-trip exactly: the JSON number is the decimal the bot holds.
    assert answer["credits"] == Decimal(str(answer["credits"]))


def test_models_json_lists_what_can_be_ordered_with_the_default_price(tmp_path: Path) -> None:
    done = run(tmp_path, "models", "--json")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout, parse_float=Decimal)
    assert [e["model"] for e in entries] == CATALOG.names(selectable_only=True)
    for entry in entries:
        assert {
            "model",
            "durations",
            "aspect_ratios",
            "options",
            "default_request",
            "credits",
            "available",
        } <= set(entry)
        spec = CATALOG.get(entry["model"])
        assert entry["available"] is True
        assert entry["durations"] == list(spec.durations)
        assert entry["aspect_ratios"] == list(spec.aspect_ratios)
        assert entry["default_request"]["duration"] == spec.default_duration
        assert entry["credits"] == _rules_price(spec.name, spec.default_duration)
    text = run(tmp_path, "models")
    assert text.returncode == 0 and CATALOG.names()[0] in text.stdout


async def test_the_cli_prices_from_the_copy_a_running_bot_saved(
    tmp_path: Path, sim: Simulator
) -> None:
    """A bot that read a changed list from EvoLink saved it; `quote` and `models` use it."""
    sim.config.price_factors["*"] = Decimal(2)
    async with running_core(tmp_path, sim) as rc:
        assert await rc.core.prices.refresh()
        version = rc.core.prices.current.meta.pricing_version
        assert version != PRICES.meta.pricing_version
    spec = CATALOG.models[0]
    text = f"a cat -m {spec.name} -d {spec.default_duration}"
    done = await asyncio.to_thread(run, tmp_path, "quote", text, "--json")
    answer = json.loads(done.stdout, parse_float=Decimal)
    assert answer["pricing_version"] == version
    assert answer["credits"] == 2 * _rules_price(spec.name, spec.default_duration)
    listed = await asyncio.to_thread(run, tmp_path, "models", "--json")
    first = json.loads(listed.stdout, parse_float=Decimal)[0]
    assert first["credits"] == answer["credits"] and first["pricing_version"] == version


async def test_check_says_whether_default_model_is_offered(tmp_path: Path, sim: Simulator) -> None:
    env = {"EVOLINK_API_KEY": "sk-secret-123", "EVOLINK_BASE_URL": sim.base_url}
    done = await asyncio.to_thread(run, tmp_path, "check", **env)
    default = CATALOG.names()[0]
    assert f"✓ DEFAULT_MODEL {default} is offered by EvoLink's price list" in done.stdout
    sim.config.retired[default] = "retired"
    done = await asyncio.to_thread(run, tmp_path, "check", **env)
    assert done.returncode == 1
    line = next(t for t in done.stdout.splitlines() if t.startswith("✗ DEFAULT_MODEL"))
    assert default in line and "Available models:" in line
    assert all(name in line for name in CATALOG.names()[1:])
    # EvoLink unreachable: the snapshot says, and check names where it looked.
    offline = {"EVOLINK_API_KEY": "", "EVOLINK_BASE_URL": "http://127.0.0.1:9"}
    done = await asyncio.to_thread(run, tmp_path, "check", **offline)
    assert f"✓ DEFAULT_MODEL {default} is offered by the packaged price list" in done.stdout
