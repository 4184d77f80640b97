"""A local EvoLink: the unified video task API, served by aiohttp, for the demo and the tests.

It answers like EvoLink's documented API (docs/PLATFORM-FACTS.md): `POST /v1/videos/generations`,
`GET /v1/tasks/{id}`, `POST /v1/tasks/batch` (up to 50 task objects under `data`; undocumented
at EvoLink, off with `batch_reads=False`), `GET /v1/credits`, the anonymous price list
`GET /v1/catalog/pricing-rules?view=full` (the shipped snapshot, changed by the knobs
`price_factors` and `retired`: bot/infra/simulator/prices.py), the same task object and error
envelope, callbacks with 10 s timeout and 3 retries (1/2/4 s), `Idempotency-Key` replays. It
also serves its own result links, `GET /files/{task_id}.mp4`, with a real H.264 + AAC clip
matching the task's orientation and length (the packaged clip nearest to the task's duration:
`clip_for`).

It is as strict as EvoLink (bot/infra/simulator/strict.py), always: a model the served list
does not offer, or a field or value the model does not take (`duration: 7` for
sora-2-preview, `generate_audio` for Kling, whose switch is `sound`), is a 400 with EvoLink's
envelope naming the field; `credits_reserved` is the rules' quote for the request; a finished
task reports `usage.credits_used`, `usage.cost`, the `billing` object and
`result_data[].video_url` beside `results[]` (`report_billing`, `report_cost`,
`report_result_data` and `report_credits_used` turn them off, for an EvoLink that omits them).
There is no permissive mode: no test needs a body EvoLink would refuse.

Invariants:
- A task's state is a pure function of the clock: `pending` for the first tenth of
  `task_seconds`, then `processing` with progress that never goes down, then `completed`
  (or `failed` halfway, when a failure was asked for). No per-task loop runs; one timer per
  task only settles it (billing, callback) when it is due, so thousands of tasks are cheap.
- A task is settled exactly once, when it ends, by its timer whether or not anyone reads it:
  its reservation is released and, when completed, what it cost (`credits_charged`: the
  reservation, or the rules' price of `actual_seconds` for a request_then_actual model, never
  more) is deducted from the balance; a failed or cancelled task costs nothing. Its billing
  object then says charged or released. A callback follows settlement.
- One `Idempotency-Key` maps to one task forever; a replay answers that task with
  `idempotency-replayed: true`.
- Injected faults (`SimulatorConfig.http_errors`) are consumed one per request of their kind,
  before authentication, and every request is recorded first (the Authorization value never).
- Differences from the real service, on purpose: plain-http callbacks are accepted for
  loopback hosts (EvoLink demands https and refuses internal addresses); `models`, when set,
  narrows the served list's models to those (an account limited to some); a prompt containing
  ``[[fail:<code>]]`` fails its task with that task error code (so the demo can show failures).

The clips in bot/data/clips (one per orientation and per length in `CLIP_SECONDS`, 3-15 s;
colour bars with a bar sweeping across the clip's length, a 0.4 s tone, ~275 KB in all) were
made once by scripts/make_demo_clips.py (imageio-ffmpeg's ffmpeg; not a dependency).
"""

from bot.infra.simulator.server import Simulator, run_simulator
from bot.infra.simulator.world import (
    TASK_ERROR_MESSAGES,
    CallbackAttempt,
    RecordedRequest,
    SimTask,
    SimulatorConfig,
    clip_bytes,
    clip_for,
    error_body,
    orientation_of,
    synthetic_video_chunks,
)

__all__ = [
    "TASK_ERROR_MESSAGES",
    "CallbackAttempt",
    "RecordedRequest",
    "SimTask",
    "Simulator",
    "SimulatorConfig",
    "clip_bytes",
    "clip_for",
    "error_body",
    "orientation_of",
    "run_simulator",
    "synthetic_video_chunks",
]
