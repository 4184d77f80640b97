"""The one validation path: every way of making a request goes through `validate_request`.

Entry points covered here: chat text (`parse_request`), structured values (`validate_request`
and `SoraService.build`), and the source itself (nothing else builds a `VideoRequest`). The
platform entry points have their own tests: Discord options (test_discord_flow.py), the Slack
modal (test_slack_modal.py), a tampered "Ask an admin" value (test_slack_approvals.py) and
the CLI's quote (tests/e2e/test_cli.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.grammar import parse_request
from bot.domain.requests import RequestOptions, options_of, validate_request
from bot.infra.simulator import Simulator
from tests.support import RunningCore

CATALOG = Catalog.load()
DEFAULT = next(s.name for s in CATALOG.models if s.image_input and not s.image_required)
NO_IMAGES = next(s.name for s in CATALOG.models if not s.image_input)
METADATA = "http://169.254.169.254/latest/meta-data"
ROOT = Path(__file__).resolve().parents[2]
_DIRECT = re.compile(r"^\s*from bot\.(grammar import|requests import .*\bvalidate_request\b)", re.M)


def test_text_with_an_internal_image_host_is_refused() -> None:
    with pytest.raises(InputError) as refused:
        parse_request(f"a cat --image {METADATA}", CATALOG, DEFAULT)
    assert refused.value.field == "image_url" and "169.254.169.254" in str(refused.value)


def test_structured_values_with_an_internal_image_host_are_refused() -> None:
    for url in (METADATA, "http://127.0.0.1:8080/a.png", "http://[::1]/a.png", "http://10.1.2.3/"):
        with pytest.raises(InputError) as refused:
            validate_request(RequestOptions(prompt="a cat", image_url=url), CATALOG, DEFAULT)
        assert refused.value.field == "image_url"
    public = RequestOptions(prompt="a cat", image_url="https://example.com/a.png")
    assert validate_request(public, CATALOG, DEFAULT).image_url == "https://example.com/a.png"


def test_only_the_platforms_own_links_skip_the_host_rule() -> None:
    attachment = RequestOptions(
        prompt="a cat", image_url="http://127.0.0.1:9/att/a.png", image_from_platform=True
    )
    assert validate_request(attachment, CATALOG, DEFAULT).image_url == attachment.image_url
    # Text typed next to a platform's attachment is still the user's.
    alongside = RequestOptions(image_url=METADATA, image_from_platform=True)
    with pytest.raises(InputError):
        parse_request(f"a cat --image {METADATA}", CATALOG, DEFAULT, alongside)
    # A request remade from its options (a button's value) keeps no platform trust.
    request = validate_request(attachment, CATALOG, DEFAULT)
    with pytest.raises(InputError):
        validate_request(options_of(request, CATALOG), CATALOG, DEFAULT)


def test_rules_other_than_the_host_still_apply_to_trusted_links() -> None:
    no_images = RequestOptions(
        prompt="a cat",
        model=NO_IMAGES,
        image_url="https://example.com/a.png",
        image_from_platform=True,
    )
    with pytest.raises(InputError) as refused:
        validate_request(no_images, CATALOG, DEFAULT)
    assert refused.value.field == "image_url"
    ftp = RequestOptions(prompt="a cat", image_url="ftp://x.y/a.png", image_from_platform=True)
    with pytest.raises(InputError):
        validate_request(ftp, CATALOG, DEFAULT)


async def test_the_service_build_refuses_internal_hosts_and_holds_nothing(
    rc: RunningCore, sim: Simulator
) -> None:
    service = rc.core.service
    with pytest.raises(InputError) as refused:
        service.build(RequestOptions(prompt="a cat", image_url=METADATA))
    assert "public" in str(refused.value)
    with pytest.raises(InputError):
        service.parse("a cat", RequestOptions(image_url=METADATA))
    # The bot's own signed /media link is fine although it names 127.0.0.1 here; an unsigned
    # or forged one on the same host is not.
    own = rc.core.media.url_for(rc.core.media.media_dir / "slack-F1.img")
    assert own is not None and own.startswith("http://127.0.0.1:")
    assert service.build(RequestOptions(prompt="a cat", image_url=own)).image_url == own
    for forged in (f"{rc.base_url}/media/check", own[:-3] + "AAA", f"{rc.base_url}/health"):
        with pytest.raises(InputError):
            service.build(RequestOptions(prompt="a cat", image_url=forged))
    assert await rc.core.store.fetchall("SELECT id FROM jobs") == []
    assert await rc.core.store.fetchall("SELECT id FROM ledger") == []
    assert [r for r in sim.requests if r.kind != "pricing"] == []


def test_nothing_but_the_validation_builds_a_request() -> None:
    """No module constructs a VideoRequest or reads one from outside data except
    `bot/domain/requests.py`; the store and approvals read back rows they accepted."""
    allowed_reads = {"bot/infra/store", "bot/services/approvals.py"}
    offenders = []
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if name != "bot/domain/requests.py" and re.search(r"(?<!class )\bVideoRequest\(", text):
            offenders.append(f"{name}: VideoRequest(")
        if re.search(r"VideoRequest\.model_(validate|construct)", text) and not any(
            name.startswith(a) for a in allowed_reads
        ):
            offenders.append(f"{name}: VideoRequest.model_validate")
        if name.startswith("adapters/") and _DIRECT.search(text):
            offenders.append(f"{name}: validates by itself, not through the service")
    assert offenders == []


SEVERAL = next(s for s in CATALOG.models if s.max_images > 1 and s.selectable)
ONE = next(s for s in CATALOG.models if s.max_images == 1 and s.selectable)


def _links(n: int) -> list[str]:
    return [f"https://example.com/reference-{i}.png" for i in range(n)]


def test_a_model_that_takes_several_images_gets_every_typed_one_in_order() -> None:
    links = _links(3)
    text = "a dancer " + " ".join(f"--image {link}" for link in [*links, links[0]])
    request = parse_request(text, CATALOG, SEVERAL.name)
    assert request.image_urls == links  # the repeated link is sent once
    assert request.prompt == "a dancer"
    # A request carried in a button or remade keeps them all.
    again = validate_request(options_of(request, CATALOG), CATALOG, SEVERAL.name)
    assert again.image_urls == links


def test_more_images_than_the_model_takes_are_refused_with_its_limit() -> None:
    text = "a dancer " + " ".join(f"--image {link}" for link in _links(SEVERAL.max_images + 1))
    with pytest.raises(InputError) as refused:
        parse_request(text, CATALOG, SEVERAL.name)
    assert f"at most {SEVERAL.max_images} images" in str(refused.value)
    assert f"got {SEVERAL.max_images + 1}" in str(refused.value)
    # A model that takes one still says two different links are one too many.
    with pytest.raises(InputError, match="given twice with different values"):
        parse_request("a cat " + " ".join(f"--image {u}" for u in _links(2)), CATALOG, ONE.name)
    with pytest.raises(InputError) as one:
        validate_request(
            RequestOptions(prompt="a cat", model=ONE.name, image_url=_links(2)[0],
                           more_image_urls=(_links(2)[1],)),
            CATALOG, ONE.name,
        )  # fmt: skip
    assert "takes one image, got 2" in str(one.value) and SEVERAL.name in str(one.value)


def test_every_further_image_is_checked_as_typed_even_beside_a_platform_attachment() -> None:
    attachment = "https://cdn.discordapp.com/attachments/1/2/first.png"
    alongside = RequestOptions(image_url=attachment, image_from_platform=True)
    request = parse_request(
        f"a dancer --image {_links(1)[0]}", CATALOG, SEVERAL.name, alongside=alongside
    )
    assert request.image_urls == [attachment, _links(1)[0]]  # the platform's own first
    with pytest.raises(InputError) as refused:
        parse_request(f"a dancer --image {METADATA}", CATALOG, SEVERAL.name, alongside=alongside)
    assert "169.254.169.254" in str(refused.value)
