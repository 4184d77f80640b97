"""How a simulated task lives: its state as a pure function of the clock, its price, the
checks EvoLink makes on a submit, and its settlement (exactly once). Mixed into `Simulator`.

The simulator is always as strict as EvoLink: what a model takes and what it costs are decided
by the served price list in bot/infra/simulator/strict.py (there is no permissive mode: every
test and the demo post bodies a current model takes); the task object's
money fields (`usage.credits_used`, `usage.cost`, `billing`) all come from one settlement, so
they never disagree with each other or with the account (`used_credits`)."""

from __future__ import annotations

import asyncio
import datetime
import random
import secrets
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from bot.domain.pricing import ModelPricing
from bot.infra.simulator.prices import served
from bot.infra.simulator.strict import Refusal, admit, settle_charge
from bot.infra.simulator.world import (
    _FAIL_TRIGGER,
    FAIL_FRACTION,
    LOOPBACK_HOSTS,
    PENDING_FRACTION,
    TASK_ERROR_MESSAGES,
    Clock,
    SimTask,
    SimulatorConfig,
    _number,
    error_body,
)

TERMINAL = ("completed", "failed", "cancelled")
BATCH_LIMIT = 50  # task ids per POST /v1/tasks/batch, as EvoLink's clients send at most
CREDITS_PER_USD = Decimal(68)  # EvoLink: 1 credit = 10,000 uc, USD = uc / 680,000


@dataclass(frozen=True)
class Admission:
    """A submit that passed the checks: what it reserves and the rules that priced it."""

    price: Decimal
    pricing: ModelPricing
    variables: dict[str, Any] = field(default_factory=dict)
    pricing_version: str | None = None


def _iso(wall: float) -> str:
    moment = datetime.datetime.fromtimestamp(wall, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def billing_object(task: SimTask, status: str) -> dict[str, Any]:
    """EvoLink's `billing` (as its clients read it): reserved while running; charged, with
    what was not used refunded, once completed; released, all refunded, once failed."""
    reserved = task.credits_reserved
    charged = task.credits_charged or Decimal(0)
    refunded = reserved - charged if task.settled else Decimal(0)
    state = "reserved" if not task.settled else "charged" if status == "completed" else "released"
    body: dict[str, Any] = {
        "charge_status": state,
        "reserved_credits": _number(reserved),
        "charged_credits": _number(charged),
        "refunded_credits": _number(refunded),
        "refund_scope": "account_balance",
        "refund_status": "completed" if refunded > 0 else "not_required",
    }
    if refunded > 0 and task.settled_wall is not None:
        body["refunded_at"] = _iso(task.settled_wall)
    if task.pricing_version is not None:
        body["pricing_version"] = task.pricing_version
    return body


class TaskWorld(ABC):
    """The tasks and their rules; `Simulator` adds the HTTP side."""

    config: SimulatorConfig
    clock: Clock
    time_scale: float
    tasks: dict[str, SimTask]
    counts: Counter[str]
    task_reads: Counter[str]
    used_credits: Decimal
    reserved_credits: Decimal
    _base_url: str | None
    _idempotency: dict[str, str]
    _open: set[str]
    _rng: random.Random

    @abstractmethod
    def _spawn(self, coro: Any) -> None:
        """Run `coro` in the background (the server keeps and awaits its tasks)."""

    @abstractmethod
    def _signal_settled(self, task_id: str) -> None:
        """Called once per task, as it is settled (the server wakes its waiters)."""

    @abstractmethod
    async def _send_callback(self, task_id: str, url: str, body: dict[str, Any]) -> None:
        """POST the settled task to its callback URL (with the documented retries)."""

    # ---- state -----------------------------------------------------------------------------

    def state(self, task: SimTask) -> tuple[str, int]:
        """(status, progress) of a task now."""
        if task.cancelled_at is not None:
            cancelled_fraction = (task.cancelled_at - task.started) / task.seconds
            return "cancelled", self._progress(task, cancelled_fraction)
        elapsed = self.clock() - task.started
        if task.fail_code is not None and elapsed >= task.seconds * FAIL_FRACTION:
            return "failed", self._progress(task, FAIL_FRACTION)
        if elapsed >= task.seconds:
            return "completed", 100
        fraction = elapsed / task.seconds
        return (
            ("pending", 0)
            if fraction < PENDING_FRACTION
            else ("processing", self._progress(task, fraction))
        )

    def _progress(self, task: SimTask, fraction: float) -> int:
        fraction = min(max(fraction, 0.0), 1.0)
        if task.curve:  # piecewise-linear through cumulative segment weights
            position = fraction * (len(task.curve) - 1)
            index = min(int(position), len(task.curve) - 2)
            low, high = task.curve[index], task.curve[index + 1]
            fraction = low + (high - low) * (position - index)
        return min(99, max(1, int(fraction * 100)))

    def task_object(self, task: SimTask, base_url: str) -> dict[str, Any]:
        status, progress = self.state(task)
        if status in TERMINAL:
            self._settle(task, status, base_url)  # once; billing comes before any answer
        usage: dict[str, Any] = {
            "billing_rule": "per_call",
            "credits_reserved": _number(task.credits_reserved),
            "user_group": "default",
        }
        body: dict[str, Any] = {
            "created": task.created,
            "id": task.id,
            "model": task.model,
            "object": "video.generation.task",
            "progress": progress,
            "status": status,
            "task_info": {
                "can_cancel": status == "pending",
                "estimated_time": task.estimated_time,
                "video_duration": task.duration,
            },
            "type": "video",
            "usage": usage,
        }
        charged = task.credits_charged if task.credits_charged is not None else Decimal(0)
        if status == "completed":
            url = f"{base_url}/files/{task.id}.mp4"
            body["results"] = [url]
            if self.config.report_result_data:
                body["result_data"] = [{"video_url": url, "duration": task.duration}]
            if self.config.report_credits_used:
                usage["credits_used"] = _number(charged)
            if self.config.report_cost:
                usd = (charged / CREDITS_PER_USD).quantize(Decimal("0.00000001"))
                usage["cost"] = {"credits": _number(charged), "usd": _number(usd)}
        elif status in ("failed", "cancelled"):
            code = task.fail_code if status == "failed" else "request_cancelled"
            body["error"] = {"code": code, "message": TASK_ERROR_MESSAGES.get(code or "", code)}
        if self.config.report_billing:
            body["billing"] = billing_object(task, status)
        return body

    def read_batch(self, body: Any, base_url: str) -> tuple[int, Any]:
        """(status, JSON) for `POST /v1/tasks/batch` with `body`: 400 and EvoLink's envelope
        for a body without a list of at most BATCH_LIMIT task ids; else 200 and each known
        task's object, exactly as `GET /v1/tasks/{id}` answers it, in the order asked (once
        each); unknown ids are left out. Counts `batch_ids` (ids read) and `task_reads`."""
        ids = body.get("task_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            message = 'Body must be {"task_ids": [task id, ...]}'
            return 400, error_body(400, message, param="task_ids")
        if len(ids) > BATCH_LIMIT:
            message = f"At most {BATCH_LIMIT} task ids per request, got {len(ids)}"
            return 400, error_body(400, message, param="task_ids")
        asked = list(dict.fromkeys(ids))
        self.counts["batch_ids"] += len(asked)
        found = [self.tasks[i] for i in asked if i in self.tasks]
        self.task_reads.update(task.id for task in found)
        objects = [self.task_object(task, base_url) for task in found]
        key = self.config.batch_key
        return 200, ({key: objects} if key else objects)

    def cancel_task(self, task_id: str) -> None:
        """Cancel as the service might (there is no documented cancel endpoint)."""
        task = self.tasks[task_id]
        if self.state(task)[0] in ("pending", "processing"):
            task.cancelled_at = self.clock()
            self.task_object(task, self._base_url or "")

    def settle_due(self) -> None:
        """Settle every task whose end has come (timers do this too; useful with a fake clock)."""
        for task_id in list(self._open):
            self.task_object(self.tasks[task_id], self._base_url or "")

    def _settle(self, task: SimTask, status: str, base_url: str) -> None:
        if task.settled:
            return
        task.settled = True
        task.settled_wall = time.time()
        self._open.discard(task.id)
        self.reserved_credits -= task.credits_reserved
        if task.timer is not None:
            task.timer.cancel()
        task.credits_charged = Decimal(0)  # failed or cancelled: the reservation is released
        if status == "completed":
            charged = task.credits_reserved
            if task.pricing is not None:
                actual = self.config.actual_seconds
                charged = settle_charge(task.pricing, task.variables, charged, actual)
            task.credits_charged = charged
            self.used_credits += charged
            if not self.config.unlimited_credits:
                self.config.remaining_credits -= charged
        self._signal_settled(task.id)
        if task.callback_url:
            body = self.task_object(task, base_url)
            self._spawn(self._send_callback(task.id, task.callback_url, body))

    def _schedule(self, task: SimTask, base_url: str) -> None:
        end = task.seconds * (FAIL_FRACTION if task.fail_code else 1.0)
        delay = max(0.0, task.started + end - self.clock()) / self.time_scale

        def due() -> None:
            status = self.state(task)[0]
            if status in ("pending", "processing"):  # clock slower than planned: look again
                self._schedule(task, base_url)
            else:
                self.task_object(task, base_url)

        task.timer = asyncio.get_running_loop().call_later(max(delay, 0.001), due)

    def _admit(self, body: dict[str, Any]) -> Admission | tuple[str, str]:
        """The checks EvoLink makes and the price it reserves: (param, message) for a 400."""
        problem = self._invalid(body)
        if problem is not None:
            return problem
        try:
            model, quote, variables = admit(served(self.config)[1], body)
        except Refusal as refusal:
            return refusal.param, refusal.message
        return Admission(quote.credits, model, variables, quote.pricing_version)

    def _invalid(self, body: dict[str, Any]) -> tuple[str, str] | None:
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not model.strip():
            return "model", "model is required"
        if self.config.models is not None and model not in self.config.models:
            return "model", f"Unsupported model: {model}"
        if not isinstance(prompt, str) or not prompt.strip():
            return "prompt", "prompt is required"
        return self._invalid_callback(body)  # the rest is the model's (strict.py)

    def _invalid_callback(self, body: dict[str, Any]) -> tuple[str, str] | None:
        callback = body.get("callback_url")
        if callback is not None:
            parts = urlsplit(callback) if isinstance(callback, str) else None
            if (
                parts is None
                or len(callback) > 2048
                or not parts.hostname
                or not (
                    parts.scheme == "https"
                    or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
                )
            ):
                return "callback_url", "callback_url must be an HTTPS URL"
        return None

    def _new_task(
        self,
        body: dict[str, Any],
        price: Decimal,
        key: str | None,
        admitted: Admission | None = None,
    ) -> SimTask:
        now = time.time()
        task_id = f"task-unified-{int(now)}-{secrets.token_hex(4)}"
        config = self.config
        fail_code: str | None = None
        trigger = _FAIL_TRIGGER.search(body["prompt"])
        if trigger:
            fail_code = trigger[1]
        elif config.fail_next:
            fail_code = config.fail_next.pop(0)
        elif config.fail_rate and self._rng.random() < config.fail_rate:
            fail_code = self._rng.choice(config.fail_codes)
        curve: tuple[float, ...] = ()
        if config.progress_noise:
            rng = random.Random(task_id)  # one generator: eight independent segment weights
            weights = [rng.choice([0, 0, 0.3, 1, 1, 3, 6]) for _ in range(8)]
            total = sum(weights) or 1.0
            points = [0.0]
            for weight in weights:
                points.append(points[-1] + weight / total)
            curve = tuple(points)
        task = SimTask(
            id=task_id,
            model=body["model"],
            prompt=body["prompt"],
            aspect_ratio=body.get("aspect_ratio"),
            duration=body.get("duration"),
            image_urls=list(body.get("image_urls") or []),
            callback_url=body.get("callback_url"),
            created=int(now),
            started=self.clock(),
            seconds=max(config.task_seconds, 1e-3),
            estimated_time=max(1, round(config.task_seconds * config.estimate_error)),
            credits_reserved=price,
            fail_code=fail_code,
            idempotency_key=key,
            curve=curve,
        )
        if admitted is not None:
            task.pricing, task.variables = admitted.pricing, admitted.variables
            task.pricing_version = admitted.pricing_version
        self.tasks[task_id] = task
        self._open.add(task_id)
        self.reserved_credits += price
        if key:
            self._idempotency[key] = task_id
        return task
