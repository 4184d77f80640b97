"""The simulator in strict mode, over real HTTP on 127.0.0.1: it serves the price list (and its
changes), refuses what a model does not take with EvoLink's 400 envelope, and bills by the
rules — reserved at submit, charged or released at the end, whoever is still looking.

Expected prices come from the shipped price list through the calculator (`PriceList.load()`),
never from figures written here."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.domain.pricing import PriceList
from bot.infra.simulator import Simulator, SimulatorConfig

AUTH = {"Authorization": "Bearer sk-test"}
PROMPT = "a paper boat on a pond"
IMAGE = "https://images.example.com/boat.png"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def prices() -> PriceList:
    return PriceList.load()


def exact(response: httpx.Response) -> Any:
    """The JSON body with every number as an exact Decimal."""
    return json.loads(response.text, parse_float=Decimal, parse_int=Decimal)


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/v1/videos/generations", json={"prompt": PROMPT, **body}, headers=AUTH)


def strict(**knobs: Any) -> SimulatorConfig:
    return SimulatorConfig(**{"task_seconds": 100, **knobs})


# ---- the price list ---------------------------------------------------------------------------


async def test_the_price_list_is_served_anonymously_as_shipped(prices: PriceList) -> None:
    async with Simulator.serve(strict()) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        response = await http.get("/v1/catalog/pricing-rules", params={"view": "full"})
        assert response.status_code == 200
        served = PriceList.from_json(response.json())
        assert served.meta == prices.meta
        assert served.model_ids == prices.model_ids
        for model in prices:
            assert served.model(model.model_id).policy_checksum == model.policy_checksum
        recorded = sim.requests[-1]
        assert (recorded.kind, recorded.query) == ("pricing", {"view": "full"})
        assert "Authorization" not in recorded.headers


async def test_a_changed_price_and_a_retired_model_show_in_the_served_list(
    prices: PriceList,
) -> None:
    sora, gone, off, old = (
        "sora-2-preview",
        "seedance-2.0-text-to-video",
        "kling-v3-text-to-video",
        "veo-3.1-fast-generate-preview",
    )
    config = strict()
    async with (
        Simulator.serve(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):

        async def served() -> PriceList:
            response = await http.get("/v1/catalog/pricing-rules?view=full")
            return PriceList.from_json(response.json())

        duration = int(prices.model(sora).variables["duration"].choices[-1])  # type: ignore[index]
        before = prices.model(sora).quote({"duration": duration}).credits
        config.price_factors[sora] = Decimal("1.5")  # while it runs: no restart
        config.retired.update({gone: "absent", off: "unavailable", old: "retired"})
        changed = await served()
        assert changed.meta.pricing_version != prices.meta.pricing_version
        assert changed.meta.catalog_version != prices.meta.catalog_version
        assert changed.model(sora).quote({"duration": duration}).credits == before * Decimal("1.5")
        assert gone not in changed
        assert not changed.model(off).offered and changed.model(off).pricing_status == "unavailable"
        assert not changed.model(old).offered and changed.model(old).lifecycle == "retired"
        # ... and the simulator bills and refuses by that same list
        task = exact(await submit(http, {"model": sora, "duration": duration}))
        assert task["usage"]["credits_reserved"] == before * Decimal("1.5")
        assert task["billing"]["pricing_version"] == changed.meta.pricing_version
        for model_id, says in ((gone, sora), (off, "not available"), (old, "not available")):
            refused = await submit(http, {"model": model_id, "duration": 5})
            assert refused.status_code == 400
            error = refused.json()["error"]
            assert error["param"] == "model" and model_id in error["message"]
            assert says in error["message"]  # the alternatives, or why not
        config.price_factors.clear()
        config.retired.clear()
        restored = await served()
        assert restored.meta.pricing_version == prices.meta.pricing_version
        assert restored.model(sora).quote({"duration": duration}).credits == before


# ---- refusals -------------------------------------------------------------------------------

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("unknown model", {"model": "nope", "duration": 8}, "model"),
    ("no model", {"duration": 8}, "model"),
    ("not offered", {"model": "seedance-asset-upload"}, "model"),
    ("sora duration 7", {"model": "sora-2-preview", "duration": 7}, "duration"),
    ("duration as text", {"model": "sora-2-preview", "duration": "8"}, "duration"),
    ("veo duration 5", {"model": "veo-3.1-fast-generate-preview", "duration": 5}, "duration"),
    ("seedance 16 s", {"model": "seedance-2.0-text-to-video", "duration": 16}, "duration"),
    ("sora quality", {"model": "sora-2-preview", "duration": 8, "quality": "720p"}, "quality"),
    ("seedance 8k", {"model": "seedance-2.0-text-to-video", "quality": "8k"}, "quality"),
    ("fast 1080p", {"model": "seedance-2.0-fast-text-to-video", "quality": "1080p"}, "quality"),
    ("sora 1:1", {"model": "sora-2-preview", "duration": 8, "aspect_ratio": "1:1"}, "aspect_ratio"),
    (
        "seedance 5:4",
        {"model": "seedance-2.0-text-to-video", "aspect_ratio": "5:4"},
        "aspect_ratio",
    ),
    ("sora 2 images", {"model": "sora-2-preview", "image_urls": [IMAGE, IMAGE]}, "image_urls"),
    (
        "10 images",
        {"model": "seedance-2.0-image-to-video", "image_urls": [IMAGE] * 10},
        "image_urls",
    ),
    ("no image for i2v", {"model": "seedance-2.0-image-to-video"}, "image_urls"),
    ("image not a link", {"model": "sora-2-preview", "image_urls": ["boat.png"]}, "image_urls"),
    ("sora audio", {"model": "sora-2-preview", "generate_audio": False}, "generate_audio"),
    ("kling audio", {"model": "kling-v3-text-to-video", "generate_audio": True}, "generate_audio"),
    ("kling sound", {"model": "kling-v3-text-to-video", "sound": "loud"}, "sound"),
    ("sora watermark", {"model": "sora-2-preview", "remove_watermark": True}, "remove_watermark"),
    (
        "seedance resize",
        {"model": "seedance-2.0-text-to-video", "resize_mode": "pad"},
        "resize_mode",
    ),
    ("sora resize", {"model": "sora-2-preview", "resize_mode": "stretch"}, "resize_mode"),
    ("veo n=5", {"model": "veo-3.1-fast-generate-preview", "n": 5}, "n"),
]


async def test_each_kind_of_bad_parameter_gets_a_400_envelope_and_creates_nothing() -> None:
    config = strict()
    async with (
        Simulator.serve(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        for name, body, param in REFUSED:
            response = await submit(http, body)
            assert response.status_code == 400, name
            error = response.json()["error"]
            assert set(error) == {"code", "message", "type", "param"}, name
            assert (error["type"], error["param"]) == ("invalid_request_error", param), name
            assert error["message"], name
        assert sim.tasks == {} and sim.reserved_credits == 0
        assert config.remaining_credits == SimulatorConfig().remaining_credits
        # the message says what the model takes
        bad = await submit(http, {"model": "sora-2-preview", "duration": 7})
        assert all(d in bad.json()["error"]["message"] for d in ("4", "8", "12"))
        veo = await submit(http, {"model": "veo-3.1-fast-generate-preview", "duration": 5})
        assert "duration must be one of 4, 6, 8" in veo.json()["error"]["message"]
        unknown = await submit(http, {"model": "nope"})
        assert "sora-2-preview" in unknown.json()["error"]["message"]


async def test_a_price_above_the_balance_is_402_by_the_rules(prices: PriceList) -> None:
    body = {"model": "sora-2-preview", "duration": 12}
    price = prices.model("sora-2-preview").quote({"duration": 12}).credits
    config = strict(remaining_credits=price - Decimal("0.01"))
    async with Simulator.serve(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        assert (await submit(http, body)).status_code == 402
        config.remaining_credits = price
        assert (await submit(http, body)).status_code == 200


# ---- billing --------------------------------------------------------------------------------

PRICED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"model": "sora-2-preview", "duration": 12, "aspect_ratio": "720x1280"}, {"duration": 12}),
    ({"model": "sora-2-preview", "image_urls": [IMAGE], "resize_mode": "crop"}, {}),
    (
        {"model": "seedance-2.0-text-to-video", "duration": 10, "quality": "1080p"},
        {"duration_seconds": 10, "quality": "1080p"},
    ),
    (
        {"model": "seedance-2.0-image-to-video", "image_urls": [IMAGE], "generate_audio": False},
        {},
    ),
    (
        {"model": "veo-3.1-fast-generate-preview", "duration": 6, "quality": "4k"},
        {"duration_seconds": 6, "quality": "4k"},
    ),
    (
        {"model": "veo-3.1-generate-preview", "duration": 8, "generate_audio": False, "n": 2},
        {"duration_seconds": 8, "generate_audio": False, "video_count": 2},
    ),
    (
        {"model": "kling-v3-text-to-video", "duration": 7, "quality": "1080p", "sound": "on"},
        {"duration_seconds": 7, "quality": "1080p", "sound": "on"},
    ),
    (
        {"model": "grok-imagine-video-1.0-i2v", "image_urls": [IMAGE, IMAGE], "duration": 3},
        {"input_images": 2, "duration_seconds": 3},
    ),
    ({"model": "seedance-2.5-text-to-video", "duration": 9}, {"duration": 9}),
]


async def test_the_bill_is_the_rules_price_reserved_then_charged(prices: PriceList) -> None:
    clock = ManualClock()
    config = strict()
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        expected: dict[str, Decimal] = {}
        for body, variables in PRICED:
            want = prices.model(body["model"]).quote(variables).credits
            response = await submit(http, body)
            assert response.status_code == 200, (body, response.text)
            task = exact(response)
            assert task["usage"]["credits_reserved"] == want, body
            assert task["billing"]["charge_status"] == "reserved"
            assert task["billing"]["reserved_credits"] == want
            assert task["billing"]["charged_credits"] == task["billing"]["refunded_credits"] == 0
            assert "credits_used" not in task["usage"] and "result_data" not in task
            expected[task["id"]] = want
        assert sim.reserved_credits == sum(expected.values())
        clock.now += 100
        for task_id, want in expected.items():
            task = exact(await http.get(f"/v1/tasks/{task_id}"))
            assert task["status"] == "completed"
            assert task["usage"]["credits_used"] == want == task["usage"]["cost"]["credits"]
            assert task["usage"]["cost"]["usd"] == (want / 68).quantize(Decimal("0.00000001"))
            assert task["billing"]["charge_status"] == "charged"
            assert task["billing"]["charged_credits"] == want
            assert task["billing"]["refunded_credits"] == 0
            assert task["billing"]["refund_scope"] == "account_balance"
            assert task["result_data"][0]["video_url"] == task["results"][0]
            assert task["results"][0] == f"{sim.base_url}/files/{task_id}.mp4"
        account = exact(await http.get("/v1/credits"))["data"]["token"]
        assert account["used_credits"] == sum(expected.values())
        assert account["remaining_credits"] == SimulatorConfig().remaining_credits - sum(
            expected.values()
        )
        assert sim.reserved_credits == 0


async def test_a_failed_task_releases_its_reservation(prices: PriceList) -> None:
    clock = ManualClock()
    config = strict(fail_next=["service_error"])
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        want = prices.model("sora-2-preview").quote({"duration": 4}).credits
        task_id = (await submit(http, {"model": "sora-2-preview", "duration": 4})).json()["id"]
        clock.now += 100
        task = exact(await http.get(f"/v1/tasks/{task_id}"))
        assert task["status"] == "failed" and task["error"]["code"] == "service_error"
        billing = task["billing"]
        assert billing["charge_status"] == "released"
        assert billing["reserved_credits"] == billing["refunded_credits"] == want
        assert billing["charged_credits"] == 0 and billing["refund_status"] == "completed"
        assert billing["refunded_at"].endswith("Z")
        assert "credits_used" not in task["usage"] and "results" not in task
        assert sim.used_credits == 0 and sim.reserved_credits == 0
        assert config.remaining_credits == SimulatorConfig().remaining_credits


async def test_a_task_nobody_follows_is_still_billed_when_it_ends(prices: PriceList) -> None:
    config = strict(task_seconds=0.2)
    async with Simulator.serve(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        want = prices.model("sora-2-preview").quote({"duration": 8}).credits
        task_id = (await submit(http, {"model": "sora-2-preview", "duration": 8})).json()["id"]
        reads = len(sim.requests)
        task = await sim.wait_settled(task_id)  # its timer, not a read, settles it
        assert len(sim.requests) == reads  # nobody asked
        assert task.credits_charged == want and sim.used_credits == want
        assert config.remaining_credits == SimulatorConfig().remaining_credits - want
        late = exact(await http.get(f"/v1/tasks/{task_id}", headers=AUTH))
        assert late["billing"]["charge_status"] == "charged"
        assert late["usage"]["credits_used"] == want
        assert sim.used_credits == want  # reading it later bills nothing more


async def test_a_shorter_actual_output_is_charged_by_the_rules_and_the_rest_refunded(
    prices: PriceList,
) -> None:
    model = prices.model("seedance-2.0-text-to-video")
    assert model.settlement_basis == "request_then_actual"
    reserved = model.quote({"duration_seconds": 10}).credits
    charged = model.quote({"duration_seconds": 6}).credits
    clock = ManualClock()
    config = strict(actual_seconds=Decimal(6))
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        task_id = (await submit(http, {"model": model.model_id, "duration": 10})).json()["id"]
        clock.now += 100
        task = exact(await http.get(f"/v1/tasks/{task_id}"))
        assert task["usage"]["credits_reserved"] == reserved
        assert task["usage"]["credits_used"] == charged
        billing = task["billing"]
        assert (billing["charge_status"], billing["charged_credits"]) == ("charged", charged)
        assert billing["refunded_credits"] == reserved - charged
        assert sim.used_credits == charged
        # a request_only model is charged what it reserved, whatever came out
        sora = exact(await submit(http, {"model": "sora-2-preview", "duration": 12}))
        clock.now += 100
        done = exact(await http.get(f"/v1/tasks/{sora['id']}"))
        assert done["usage"]["credits_used"] == sora["usage"]["credits_reserved"]


# ---- strict by default, as EvoLink ----------------------------------------------------------


async def test_the_default_simulator_refuses_as_evolink_and_reports_billing() -> None:
    clock = ManualClock()
    config = SimulatorConfig(task_seconds=100)  # no knob: as strict as EvoLink
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        for body, param in (
            ({"model": "sora-2-preview", "duration": 7}, "duration"),
            ({"model": "nope"}, "model"),
            ({"model": "sora-2", "duration": 10}, "model"),  # the retired model
        ):
            refused = await submit(http, body)
            assert refused.status_code == 400, body
            assert refused.json()["error"]["param"] == param
            assert refused.json()["error"]["type"] == "invalid_request_error"
        assert sim.tasks == {}
        taken = await submit(http, {"model": "sora-2-preview", "duration": 8})
        assert taken.status_code == 200
        assert taken.json()["billing"]["charge_status"] == "reserved"
        clock.now += 100
        task = exact(await http.get(f"/v1/tasks/{taken.json()['id']}"))
        assert task["billing"]["charge_status"] == "charged"
        assert task["billing"]["charged_credits"] == task["usage"]["credits_used"]
        assert task["usage"]["cost"]["credits"] == task["usage"]["credits_used"]
        assert task["result_data"] == [{"video_url": task["results"][0], "duration": 8}]
        assert sim.used_credits == task["usage"]["credits_used"]
        # an EvoLink that leaves the billing fields out
        config.report_billing = config.report_cost = config.report_result_data = False
        bare = exact(await http.get(f"/v1/tasks/{taken.json()['id']}"))
        assert "billing" not in bare and "result_data" not in bare
        assert "cost" not in bare["usage"]
