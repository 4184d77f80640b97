"""How a simulated task lives: its state as a pure function of the clock, its price, the
checks EvoLink makes on a submit, and its settlement (exactly once). Mixed into `Simulator`."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from bot.infra.simulator.world import (
    _FAIL_TRIGGER,
    FAIL_FRACTION,
    LOOPBACK_HOSTS,
    PENDING_FRACTION,
    TASK_ERROR_MESSAGES,
    Clock,
    SimTask,
    SimulatorConfig,
    _catalog,
    _number,
)


class TaskWorld:
    """The tasks and their rules; `Simulator` adds the HTTP side."""

    config: SimulatorConfig
    clock: Clock
    time_scale: float
    tasks: dict[str, SimTask]
    used_credits: Decimal
    reserved_credits: Decimal
    _base_url: str | None
    _idempotency: dict[str, str]
    _open: set[str]
    _rng: random.Random

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError

    async def _send_callback(self, task_id: str, url: str, body: dict[str, Any]) -> None:
        raise NotImplementedError

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
        if status == "completed":
            body["results"] = [f"{base_url}/files/{task.id}.mp4"]
            if self.config.report_credits_used:
                usage["credits_used"] = _number(task.credits_reserved)
        elif status in ("failed", "cancelled"):
            code = task.fail_code if status == "failed" else "request_cancelled"
            body["error"] = {"code": code, "message": TASK_ERROR_MESSAGES.get(code or "", code)}
        if status in ("completed", "failed", "cancelled"):
            self._settle(task, status, base_url)
        return body

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
        self._open.discard(task.id)
        self.reserved_credits -= task.credits_reserved
        if task.timer is not None:
            task.timer.cancel()
        if status == "completed":
            self.used_credits += task.credits_reserved
            if not self.config.unlimited_credits:
                self.config.remaining_credits -= task.credits_reserved
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

    def _price(self, body: dict[str, Any]) -> Decimal:
        """Bill as the packaged catalog quotes (so the demo's numbers agree); models or
        durations it does not know fall back to `credits_per_second`."""
        duration = body.get("duration")
        spec = _catalog().find(str(body.get("model", "")))
        if spec is not None and isinstance(duration, int) and duration in spec.prices:
            keep = body.get("remove_watermark")
            return spec.price(duration, remove_watermark=keep if isinstance(keep, bool) else None)
        seconds = duration if isinstance(duration, int) else 10
        return self.config.credits_per_second * Decimal(seconds)

    def _invalid(self, body: dict[str, Any]) -> tuple[str, str] | None:
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not model.strip():
            return "model", "model is required"
        if self.config.models is not None and model not in self.config.models:
            return "model", f"Unsupported model: {model}"
        if not isinstance(prompt, str) or not prompt.strip():
            return "prompt", "prompt is required"
        duration = body.get("duration")
        if duration is not None and (not isinstance(duration, int) or not 1 <= duration <= 60):
            return "duration", "duration must be a whole number of seconds"
        images = body.get("image_urls")
        if images is not None and (
            not isinstance(images, list)
            or len(images) > 1
            or not all(isinstance(u, str) for u in images)
        ):
            return "image_urls", "image_urls takes at most 1 URL"
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

    def _new_task(self, body: dict[str, Any], price: Decimal, key: str | None) -> SimTask:
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
        self.tasks[task_id] = task
        self._open.add(task_id)
        self.reserved_credits += price
        if key:
            self._idempotency[key] = task_id
        return task
