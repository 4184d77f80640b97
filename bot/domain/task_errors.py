"""EvoLink's task error codes: the one table that owns them.

A task that ends `failed` carries `error: {"code", "message"}` in its task object
(`GET /v1/tasks/{id}`). EvoLink's docs sort the codes in two groups: the first needs a changed
request, the second may pass on a later try without any change. Every other module takes the
codes from here: the client's error mapping (bot/infra/evolink.py), the simulator's failures
(bot/infra/simulator/) and the tests.

Invariants: every code is in exactly one group; every code has words a chat user can read
(no code names, no underscores); a code EvoLink adds later still gets words (`reason_for_code`)
and is not retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class TaskErrorCode:
    #: EvoLink's `error.code`.
    code: str
    #: True when the same request may pass later ("retry later" group); False when the
    #: request itself must change ("fix the input" group).
    retry_later: bool
    #: The failure in plain words, for chat users.
    reason: str
    #: What the simulator puts in `error.message` (EvoLink's own wording is not documented).
    simulated_message: str


_TABLE = (
    # -- fix the input ------------------------------------------------------------------------
    TaskErrorCode(
        "content_policy_violation",
        False,
        "EvoLink's content policy refused this prompt or image — try rephrasing",
        "The request was rejected by the content policy.",
    ),
    TaskErrorCode(
        "invalid_parameters",
        False,
        "EvoLink rejected the request's options — check the model, duration and aspect ratio",
        "Invalid parameters for this model.",
    ),
    TaskErrorCode(
        "image_processing_error",
        False,
        "EvoLink could not read the reference image — try another one "
        "(jpg, png or webp, under 10 MB, no real people)",
        "The input image could not be processed.",
    ),
    TaskErrorCode(
        "image_dimension_mismatch",
        False,
        "the reference image's size does not match the aspect ratio — "
        "crop it or pick the matching aspect ratio",
        "The image dimensions do not match the aspect ratio.",
    ),
    TaskErrorCode(
        "request_cancelled",
        False,
        "the video task was cancelled",
        "The request was cancelled.",
    ),
    # -- retry later --------------------------------------------------------------------------
    TaskErrorCode(
        "generation_failed_no_content",
        True,
        "the model finished without producing a video — try again or rephrase the prompt",
        "Generation finished without content.",
    ),
    TaskErrorCode(
        "service_error",
        True,
        "the video service had a problem — try again",
        "Internal service error.",
    ),
    TaskErrorCode(
        "generation_timeout",
        True,
        "the video took too long to generate — try again",
        "Generation timed out.",
    ),
    TaskErrorCode(
        "resource_exhausted",
        True,
        "the video service is out of capacity right now — try again later",
        "Resources are exhausted.",
    ),
    TaskErrorCode(
        "quota_exceeded",
        True,
        "the video service's capacity is used up right now — try again later",
        "Upstream quota exceeded.",
    ),
    TaskErrorCode(
        "service_unavailable",
        True,
        "the video service is unavailable right now — try again later",
        "Service temporarily unavailable.",
    ),
    TaskErrorCode(
        "resource_not_found",
        True,
        "the video service lost part of the task — try again",
        "Resource not found.",
    ),
    TaskErrorCode(
        "unknown_error",
        True,
        "the video service failed without saying why — try again",
        "Unknown error.",
    ),
    TaskErrorCode(
        "model_unavailable",
        True,
        "that model is unavailable right now — try again later or pick another",
        "The model is temporarily unavailable.",
    ),
    TaskErrorCode(
        "upstream_error",
        True,
        "the provider behind EvoLink had a problem — try again",
        "Upstream provider error.",
    ),
)

#: Every documented task error code, by code.
TASK_ERRORS: Mapping[str, TaskErrorCode] = MappingProxyType({e.code: e for e in _TABLE})
#: Codes whose request must change before it can pass.
FIX_INPUT_CODES = frozenset(e.code for e in _TABLE if not e.retry_later)
#: Codes that may pass on a later try of the same request.
RETRY_LATER_CODES = frozenset(e.code for e in _TABLE if e.retry_later)


def reason_for_code(code: str | None) -> str:
    """A task error code in plain words, for chat users."""
    if code is None:
        return TASK_ERRORS["unknown_error"].reason
    known = TASK_ERRORS.get(code)
    return known.reason if known else f"the video service failed ({code}) — try again"
