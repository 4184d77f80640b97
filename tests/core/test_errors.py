"""The error tree: bot/domain/errors.py's drawing is the truth, and each drawn class is used.

The docstring's tree is parsed (indentation gives the parent), then checked against the
classes, against every BotError subclass the core defines, and against the sources (each
class is named outside bot/domain/errors.py). Behaviour: the EvoLink client raises the typed errors
callers branch on, and approvals raise ApprovalNotFound.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import bot
from bot.domain import errors
from bot.domain.catalog import Catalog
from bot.domain.errors import (
    ApprovalNotFound,
    BotError,
    JobNotFound,
    NotFound,
    ProviderHTTPError,
    ResultExpired,
    TaskFailed,
    TaskNotFound,
)
from bot.domain.models import JobStatus, Surface, VideoRequest
from bot.domain.task_errors import FIX_INPUT_CODES, RETRY_LATER_CODES, TASK_ERRORS, reason_for_code
from bot.infra.evolink import EvoLinkClient, TaskSnapshot
from bot.infra.simulator import TASK_ERROR_MESSAGES, Simulator, SimulatorConfig
from tests.conftest import ALICE
from tests.support import RecordingPort, RunningCore

ROOT = Path(__file__).resolve().parents[2]
_SPEC = next(spec for spec in Catalog.load().models if spec.selectable and not spec.image_required)
REQUEST = VideoRequest(  # one the (strict) simulator takes: a catalog model's default request
    model=_SPEC.name,
    prompt="a kite over a beach",
    duration=_SPEC.default_duration,
    aspect_ratio=_SPEC.default_aspect_ratio,
)
_NODE = re.compile(r"^[ │]*[├└]── (?P<name>[A-Z][A-Za-z]+)\b")  # a branch; the root has none


def drawn_tree() -> dict[str, str | None]:
    """{class name: parent name} from the docstring's drawing (BotError's parent is None)."""
    assert errors.__doc__ is not None
    lines = errors.__doc__.split("\n\n")[1].splitlines()  # the drawing is the second paragraph
    tree: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name)
    root = lines[0].split()[0]
    tree[root] = None
    stack.append((lines[0].index(root), root))
    for line in lines[1:]:
        match = _NODE.match(line)
        if match is None:
            continue  # a description's second line
        column = match.start("name")
        while stack and stack[-1][0] >= column:
            stack.pop()
        tree[match["name"]] = stack[-1][1] if stack else None
        stack.append((column, match["name"]))
    return tree


def test_the_drawing_parses_to_a_tree_rooted_at_bot_error() -> None:
    tree = drawn_tree()
    assert tree["BotError"] is None
    assert tree["JobNotFound"] == "NotFound" and tree["ApprovalNotFound"] == "NotFound"
    assert tree["TaskNotFound"] == "ProviderHTTPError" and tree["TaskFailed"] == "ProviderError"
    assert len(tree) >= 15


def test_every_drawn_class_exists_with_the_drawn_parent() -> None:
    for name, parent in drawn_tree().items():
        cls = getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, BaseException), name
        expected = Exception if parent is None else getattr(errors, parent)
        assert cls.__bases__ == (expected,), f"{name}: drawn under {parent}"


def test_every_error_class_of_the_core_is_drawn() -> None:
    for info in pkgutil.iter_modules(bot.__path__):
        if not info.name.startswith("_"):  # __main__ would run the program
            importlib.import_module(f"bot.{info.name}")
    seen: set[str] = set()
    todo: list[type[BaseException]] = [BotError]
    while todo:
        cls = todo.pop()
        seen.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    assert seen <= set(drawn_tree()), f"not drawn: {sorted(seen - set(drawn_tree()))}"


def test_every_drawn_leaf_is_used_outside_the_tree_module() -> None:
    tree = drawn_tree()
    parents = {p for p in tree.values() if p is not None}
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in ("bot", "adapters")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "errors.py"
    )
    for name in set(tree) - parents:
        assert re.search(rf"\b{name}\b", sources), f"{name} is drawn but never used"


def test_one_table_owns_the_task_error_codes() -> None:
    assert set(TASK_ERRORS) == FIX_INPUT_CODES | RETRY_LATER_CODES
    assert not FIX_INPUT_CODES & RETRY_LATER_CODES
    assert TASK_ERROR_MESSAGES.keys() == TASK_ERRORS.keys()  # the simulator takes them from it
    for code, entry in TASK_ERRORS.items():
        assert entry.code == code and "_" not in entry.reason
    assert reason_for_code("brand_new_code").endswith("— try again")
    for path in (ROOT / "bot").glob("*.py"):
        if path.name != "task_errors.py":
            text = path.read_text(encoding="utf-8")
            assert text.count('"image_dimension_mismatch"') == 0, path.name


async def test_the_client_raises_task_not_found_for_a_404_and_an_unknown_id() -> None:
    config = SimulatorConfig(task_seconds=0.2, http_errors={"task": [404]})
    async with (
        Simulator.serve(config) as sim,
        EvoLinkClient(sim.base_url, "sk-test", backoff_base=0.01) as client,
    ):
        task = await client.submit("job-1", REQUEST)
        with pytest.raises(TaskNotFound) as gone:
            await client.get_task(task.id)
        assert gone.value.status == 404 and not gone.value.retryable
        with pytest.raises(TaskNotFound) as unknown:
            await client.get_task("task-unified-0-nope")
        assert (unknown.value.status, unknown.value.code) == (400, "invalid_task_id")
        assert isinstance(unknown.value, ProviderHTTPError)
        assert (await client.get_task(task.id)).id == task.id  # the task itself is still there


async def test_the_client_raises_result_expired_for_a_gone_link(tmp_path: Path) -> None:
    async with (
        Simulator.serve(SimulatorConfig(task_seconds=0.2)) as sim,
        EvoLinkClient(sim.base_url, "sk-test", backoff_base=0.01) as client,
    ):
        with pytest.raises(ResultExpired) as caught:
            await client.download(f"{sim.base_url}/files/task-unified-0-gone.mp4", tmp_path / "v")
    assert caught.value.status == 404 and sim.counts["download"] == 1


async def test_other_http_errors_stay_untyped() -> None:
    config = SimulatorConfig(task_seconds=0.2, http_errors={"task": [403]})
    async with (
        Simulator.serve(config) as sim,
        EvoLinkClient(sim.base_url, "sk-test", backoff_base=0.01) as client,
    ):
        task = await client.submit("job-1", REQUEST)
        with pytest.raises(ProviderHTTPError) as caught:
            await client.get_task(task.id)
    assert type(caught.value) is ProviderHTTPError and caught.value.status == 403


def test_snapshots_raise_task_failed_when_no_video_came() -> None:
    failed = TaskSnapshot(id="t", status="failed", error_code="content_policy_violation")
    with pytest.raises(TaskFailed) as caught:
        failed.raise_for_failure()
    assert caught.value.code == "content_policy_violation" and not caught.value.retryable
    empty = TaskSnapshot(id="t", status="completed")
    with pytest.raises(TaskFailed) as caught:
        empty.raise_for_failure()
    assert caught.value.code == "generation_failed_no_content" and caught.value.retryable
    TaskSnapshot(id="t", status="completed", results=["https://cdn/v.mp4"]).raise_for_failure()
    TaskSnapshot(id="t", status="processing").raise_for_failure()


async def test_unknown_approvals_and_jobs_raise_their_not_found(rc: RunningCore) -> None:
    service = rc.core.service
    with pytest.raises(ApprovalNotFound) as approval:
        await service.get_approval("a-none")
    with pytest.raises(JobNotFound) as job:
        await service.get_job("j-none")
    assert isinstance(approval.value, NotFound) and isinstance(job.value, NotFound)
    assert not isinstance(approval.value, JobNotFound)
    assert "a-none" in str(approval.value)


async def test_a_task_evolink_no_longer_knows_fails_its_job(
    rc: RunningCore, sim: Simulator, port: RecordingPort
) -> None:
    """The tracker's side of TaskNotFound: the job fails at once and its hold is released."""
    service = rc.core.service
    sim.config.task_seconds = 60.0
    job = await service.submit(ALICE, service.parse("a lighthouse in fog"), Surface())
    submitted = (await port.wait_for(job.id, "progress")).job  # told once it is submitted
    assert submitted.task_id is not None
    # EvoLink forgets the task: a batch read leaves it out, the single read says 404.
    sim.tasks.pop(submitted.task_id)
    rc.core.tracker.wake(job.id)
    failed = await port.wait_for(job.id, "failed")
    assert failed.reason == "EvoLink no longer knows this task."
    final = await service.get_job(job.id)
    assert final.status == JobStatus.FAILED and final.error_code == "invalid_task_id"
    assert (await service.balance(ALICE)).held == 0
