"""The layers, read from the source: the core imports no adapter and no entry point, adapters
see the core only through its seam (bot/services/interface.py and the value types), and no adapter
imports another. Imports inside functions and under TYPE_CHECKING count too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What an adapter may not import: the composition root and the owners behind the service.
BEHIND_THE_SEAM = (
    "bot.app",
    "bot.bootstrap",
    "bot.infra.evolink",
    "bot.services.jobs",
    "bot.services.oversight",
    "bot.services.service",
    "bot.infra.store",
    "bot.services.tracker",
    "bot.web",
    "sora_bot",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offences(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "bot" / "__main__.py"  # `python -m bot`: an entry point by contract
        for module in imported_modules(path)
        if any(within(module, banned) for banned in forbidden)
    )


def test_the_core_imports_no_adapter_and_no_entry_point() -> None:
    assert offences("bot", ("adapters", "sora_bot", "tests")) == []


def test_adapters_see_the_core_only_through_its_seam() -> None:
    assert offences("adapters", BEHIND_THE_SEAM) == []


def test_no_adapter_imports_another() -> None:
    adapters = [p.name for p in (ROOT / "adapters").iterdir() if (p / "__init__.py").exists()]
    for name in adapters:
        others = tuple(f"adapters.{other}" for other in adapters if other != name)
        assert offences(f"adapters/{name}", others) == []


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.app import Core\n"
        "def f():\n    import adapters.slack\n"
    )
    assert {"bot.app", "adapters.slack"} <= imported_modules(source)


def test_the_domain_is_pure_and_infrastructure_serves_it() -> None:
    """bot/domain imports nothing else of the bot; bot/infra only the domain; the services do
    not reach up into the composition root (bot/app.py, bot/bootstrap.py, bot/web.py)."""
    outside_domain = ("bot.services", "bot.infra", "bot.app", "bot.bootstrap", "bot.web")
    assert offences("bot/domain", outside_domain) == []
    assert offences("bot/infra", ("bot.services", "bot.app", "bot.bootstrap", "bot.web")) == []
    assert offences("bot/services", ("bot.app", "bot.bootstrap", "bot.web")) == []
