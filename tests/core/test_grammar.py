"""The shared text grammar: good requests in every spelling, hostile text refused with an
InputError that says what was wrong, and a property test that nothing else ever escapes.

Repeated options: the same value twice is accepted; different values are an error."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.catalog import Catalog
from bot.domain.chat_commands import parse_chat_command, usage_text
from bot.domain.errors import InputError
from bot.domain.grammar import MAX_TEXT_CHARS, clean_prompt, parse_request
from bot.domain.models import VideoRequest, fmt_credits
from bot.domain.offer import Choices, orderable, quote_choices
from bot.domain.pricing import PriceList
from bot.domain.requests import RequestOptions, options_of, validate_request

# A test catalog with every shape the validation handles (watermark choice, a remix model,
# resize modes, ratio spellings); the packaged catalog's own models are tested at the end.
CATALOG = Catalog.load(Path(__file__).with_name("grammar_catalog.json"))
DEFAULT = "sora-2"
PACKAGED = Catalog.load()


def parse(text: str, **options: Any) -> VideoRequest:
    return parse_request(text, CATALOG, DEFAULT, RequestOptions(**options))


def build(**options: Any) -> VideoRequest:
    return validate_request(RequestOptions(**options), CATALOG, DEFAULT)


# -- good input ---------------------------------------------------------------------------

_GOOD: list[tuple[str, dict[str, Any]]] = [
    (
        "a paper boat",
        {
            "prompt": "a paper boat",
            "model": "sora-2",
            "duration": 10,
            "aspect_ratio": "9:16",
            "remove_watermark": True,
        },
    ),
    ("--duration 15 a paper boat", {"prompt": "a paper boat", "duration": 15}),
    ("a paper boat --duration 15", {"prompt": "a paper boat", "duration": 15}),
    ("a paper --duration 15 boat", {"prompt": "a paper boat", "duration": 15}),
    ("a boat -d 15", {"duration": 15}),
    ("/sora a boat -d 15", {"duration": 15, "prompt": "a boat"}),
    ("/SORA a boat /sora", {"prompt": "a boat /sora"}),
    ("a boat --seconds 15", {"duration": 15}),
    ("a boat --duration=15", {"duration": 15}),
    ("a boat --duration 15s", {"duration": 15}),
    ("a boat --duration=15sec", {"duration": 15}),
    ("a boat --DURATION 15", {"duration": 15}),
    ("a boat -D 15", {"duration": 15}),
    ("a boat --ar 16:9", {"aspect_ratio": "16:9"}),
    ("a boat --aspect landscape", {"aspect_ratio": "16:9"}),
    ("a boat --aspect-ratio PORTRAIT", {"aspect_ratio": "9:16"}),
    ("a boat --aspect_ratio=1280x720", {"aspect_ratio": "16:9"}),
    ("a boat -ar 16:9", {"aspect_ratio": "16:9"}),
    ("a boat --landscape", {"aspect_ratio": "16:9"}),
    ("a boat --portrait --ar 9:16", {"aspect_ratio": "9:16"}),
    (
        "a boat --model sora-2-preview",
        {
            "model": "sora-2-preview",
            "duration": 4,
            "aspect_ratio": "1280x720",
            "remove_watermark": None,
        },
    ),
    (
        "a boat -m SORA-2-PREVIEW --ar 16:9 -d 12",
        {"model": "sora-2-preview", "aspect_ratio": "1280x720", "duration": 12},
    ),
    ("a boat -m sora-2-preview --ar portrait", {"aspect_ratio": "720x1280"}),
    ("a boat -m sora-2-preview --resize CROP", {"resize_mode": "crop"}),
    (
        "a boat --model=seedance-2.0 --ar square -d 10",
        {"model": "seedance-2.0", "aspect_ratio": "1:1", "duration": 10},
    ),
    ("a boat --watermark", {"remove_watermark": False}),
    ("a boat --no-watermark", {"remove_watermark": True}),
    ("a boat --watermark=no", {"remove_watermark": True}),
    ("a boat --watermark=keep", {"remove_watermark": False}),
    (
        "a boat --image https://example.com/a.png",
        {"image_url": "https://example.com/a.png", "prompt": "a boat"},
    ),
    (
        "a boat --img <https://example.com/a.png|example.com/a.png>",
        {"image_url": "https://example.com/a.png"},
    ),
    ("a boat --image=HTTP://Example.com/x.webp", {"image_url": "HTTP://Example.com/x.webp"}),
    ("a boat --model sora-2 -m Sora-2", {"model": "sora-2"}),  # same value twice: fine
    ("a boat -d 10 --duration 10s", {"duration": 10}),
    ("a boat --landscape --ar 16:9", {"aspect_ratio": "16:9"}),
    # Phones and Slack turn -- into em/en dashes.
    (
        "a boat —duration 15 –ar landscape",
        {"duration": 15, "aspect_ratio": "16:9", "prompt": "a boat"},
    ),
    ("a cat —and a dog", {"prompt": "a cat —and a dog"}),  # a dash in prose stays prose
    ("-20°C on a frozen lake", {"prompt": "-20°C on a frozen lake"}),
    ("a well--known cat", {"prompt": "a well--known cat"}),
    ("wait -- what", {"prompt": "wait -- what"}),
    ("  a   boat\n\ton\u00a0the\u3000sea  ", {"prompt": "a boat on the sea"}),
    ('"a boat at night" --duration 15', {"prompt": "a boat at night", "duration": 15}),
    ("“a boat at night”", {"prompt": "a boat at night"}),
    ('a "quoted" word', {"prompt": 'a "quoted" word'}),
    # Unicode prompts are kept intact.
    ("猫がピアノを弾いている --ar landscape", {"prompt": "猫がピアノを弾いている"}),
    ("قطة تعزف على البيانو -d 15", {"prompt": "قطة تعزف على البيانو", "duration": 15}),
    ("חתול מנגן בפסנתר", {"prompt": "חתול מנגן בפסנתר"}),
    (
        "a family 👨\u200d👩\u200d👧 dancing 🐈\u200d⬛",
        {"prompt": "a family 👨\u200d👩\u200d👧 dancing 🐈\u200d⬛"},
    ),
    ("e\u0301clair", {"prompt": "éclair"}),  # NFC
    # Invisible and control characters are removed, also inside option names and values.
    ("a boat --dur\u200bation 15", {"duration": 15, "prompt": "a boat"}),
    ("a boat --dur\u200dation 1\u200b5", {"duration": 15}),
    ("a\x00 boat\x00 --ar\x00 16:9", {"prompt": "a boat", "aspect_ratio": "16:9"}),
    ("a \u202eboat\u202c \ufeff", {"prompt": "a boat"}),
    ("a boat \U000e0041\U000e0042", {"prompt": "a boat"}),  # tag characters smuggle text
    (
        "a boat －－ｄｕｒａｔｉｏｎ １５ －－ａｒ １６：９",
        {"duration": 15, "aspect_ratio": "16:9"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), _GOOD, ids=[repr(t)[:50] for t, _ in _GOOD])
def test_good_requests(text: str, expected: dict[str, Any]) -> None:
    request = parse(text)
    for field, value in expected.items():
        assert getattr(request, field) == value, field


@pytest.mark.parametrize(
    ("default", "expected"),
    [("sora-2", (10, "9:16")), ("sora-2-preview", (4, "1280x720")), ("Seedance-2.0", (5, "16:9"))],
)
def test_default_model_supplies_the_defaults(default: str, expected: tuple[int, str]) -> None:
    request = parse_request("a lighthouse", CATALOG, default)
    assert (request.duration, request.aspect_ratio) == expected
    assert request.model == CATALOG.get(default).name


# -- bad input ----------------------------------------------------------------------------

_BAD: list[tuple[str, str, str]] = [
    ("", "prompt", "Say what the video should show"),
    ("   \n\t ", "prompt", "Say what the video should show"),
    ("\u200b\u200b\x00", "prompt", "Say what the video should show"),
    ("--duration 15 --ar 16:9", "prompt", "Say what the video should show"),
    ('""', "prompt", "Say what the video should show"),
    ("a boat --duration 7", "duration", "Duration 7 is not available for sora-2. Choose 10 or 15."),
    (
        "a boat -m sora-2-preview -d 10",
        "duration",
        "Duration 10 is not available for sora-2-preview. Choose 4, 8 or 12.",
    ),
    ("a boat --duration ten", "duration", "'ten' is not a number of seconds"),
    ("a boat --duration 99999999999999999999", "duration", "not a number of seconds"),
    ("a boat --duration -5", "duration", "must be a positive number of seconds, not -5"),
    ("a boat -d -5", "duration", "must be a positive number of seconds, not -5"),
    ("a boat --duration", "duration", "--duration needs a value"),
    ("a boat -d --ar 16:9", "duration", "-d needs a value"),
    (
        "a boat --ar 4:3",
        "aspect_ratio",
        "Aspect ratio '4:3' is not available for sora-2. Choose 16:9 or 9:16",
    ),
    ("a boat -m sora-2-preview --ar 1:1", "aspect_ratio", "Choose 1280x720 or 720x1280"),
    ("a boat --foo", "option", "Unknown option --foo. Options: --duration"),
    ("a boat --help", "option", "Unknown option --help"),
    ("a boat --model sora-3", "model", "Unknown model 'sora-3'. Choose one of: sora-2"),
    ("a boat --model", "model", "--model needs a value"),
    ("a boat --model sora-2-pro-remix", "model", "cannot be ordered on its own"),
    ("a boat -d 10 -d 15", "duration", "given twice with different values"),
    ("a boat --landscape --portrait", "aspect_ratio", "given twice with different values"),
    ("a boat --watermark --no-watermark", "watermark", "given twice"),
    ("a boat --model sora-2 --model sora-2-pro", "model", "given twice"),
    ("a boat --watermark=maybe", "watermark", "takes no value"),
    ("a boat --landscape=yes", "aspect_ratio", "takes no value"),
    ("a boat --model seedance-2.0 --watermark", "watermark", "seedance-2.0 has no watermark"),
    ("a boat --resize pad", "resize_mode", "sora-2 has no resize option"),
    ("a boat -m sora-2-preview --resize stretch", "resize_mode", "choose pad or crop"),
    ("a boat --image ftp://example.com/a.png", "image_url", "http(s)"),
    ("a boat --image example.com/a.png", "image_url", "http(s)"),
    ("a boat --image https://", "image_url", "http(s)"),
    ("a boat --image http://[::1", "image_url", "http(s)"),
    ("a boat --image https://x.y/" + "a" * 3000, "image_url", "2048"),
    ("a boat", "", ""),  # placeholder replaced below (keeps ids stable)
]
_BAD[-1] = ("x" * 1001, "prompt", "The prompt is 1,001 characters long; sora-2 takes at most 1,000")


@pytest.mark.parametrize(("text", "field", "message"), _BAD, ids=[repr(t)[:40] for t, _, _ in _BAD])
def test_bad_requests_say_what_is_wrong(text: str, field: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse(text)
    assert err.value.field == field
    assert message in str(err.value)


def test_errors_list_the_valid_values() -> None:
    with pytest.raises(InputError) as err:
        parse("a boat -m sora-2-preview -d 5")
    assert err.value.valid == ("4", "8", "12")
    with pytest.raises(InputError) as err:
        parse("a boat --ar 1:1")
    assert {"16:9", "9:16", "landscape", "portrait"} <= set(err.value.valid)
    with pytest.raises(InputError) as err:
        parse("a boat --frobnicate 3")
    assert {"--duration", "--ar", "--model", "--image", "--watermark"} <= set(err.value.valid)
    with pytest.raises(InputError) as err:
        parse(
            "a boat --model sora-2-pro-remix --image https://x.y/a.png", base_video_task_id="task-1"
        )
    assert err.value.field == "image_url"
    assert "sora-2" in err.value.valid and "sora-2-pro-remix" not in err.value.valid


def test_prompt_limit_is_the_models_own() -> None:
    long_prompt = "y" * 1500
    with pytest.raises(InputError, match="sora-2 takes at most 1,000"):
        parse(long_prompt)
    assert parse(f"{long_prompt} -m sora-2-preview").prompt == long_prompt
    assert parse("z" * 1000).prompt == "z" * 1000  # exactly at the limit


@pytest.mark.parametrize(
    "text", ["x" * 20_000, "a " * 10_000, "--duration 10 " * 2000, "\u200b" * 50_000 + "a cat"]
)
def test_huge_input_is_refused_fast(text: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InputError) as err:
        parse(text)
    elapsed = time.perf_counter() - started
    assert err.value.field == "prompt"
    assert f"{MAX_TEXT_CHARS:,}" in str(err.value) or "characters long" in str(err.value)
    assert elapsed < 5, elapsed  # a guard against super-linear parsing, not a benchmark


def test_worst_case_text_under_the_cap_parses_fast() -> None:
    text = ("--ar 16:9 -d 10 " * 700)[: MAX_TEXT_CHARS - 10] + " a cat"
    started = time.perf_counter()
    request = parse(text)
    assert time.perf_counter() - started < 5  # super-linear parsing would take minutes
    assert request.prompt.endswith("a cat")


# -- structured path (Discord options) and merging ------------------------------------------


def test_validate_request_structured_values() -> None:
    request = build(
        prompt="  a   kite ",
        model="SORA-2",
        duration="15s",
        aspect_ratio="landscape",
        watermark=True,
        image_url="https://example.com/kite.jpg",
    )
    assert request == VideoRequest(
        model="sora-2",
        prompt="a kite",
        duration=15,
        aspect_ratio="16:9",
        image_url="https://example.com/kite.jpg",
        remove_watermark=False,
    )
    # The structured prompt is literal: flags in it are prose, not options.
    assert build(prompt="a kite --duration 15").duration == 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"duration": True}, "duration"),
        ({"duration": 11}, "duration"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"model": "sora-2-pro-remix"}, "model"),
        ({"base_video_task_id": "task-1"}, "base_video_task_id"),
        ({"model": "sora-2-pro-remix", "base_video_task_id": "bad id!"}, "base_video_task_id"),
        (
            {"model": "sora-2-pro-remix", "base_video_task_id": "t1", "image_url": "https://x.y/a"},
            "image_url",
        ),
    ],
)
def test_validate_request_refusals(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        build(prompt="a kite", **kwargs)
    assert err.value.field == field


def test_remix_request_carries_the_base_task() -> None:
    request = build(
        prompt="now at night",
        model="sora-2-pro-remix",
        base_video_task_id=" task-unified-1757169743-7cvnl5zw ",
    )
    assert request.base_video_task_id == "task-unified-1757169743-7cvnl5zw"
    assert request.model == "sora-2-pro-remix"


def test_text_flags_merge_with_structured_options() -> None:
    request = parse("a kite --ar landscape", duration=15, model="sora-2")
    assert (request.duration, request.aspect_ratio) == (15, "16:9")
    assert parse("a kite --ar 16:9", aspect_ratio="landscape").aspect_ratio == "16:9"
    assert parse("a kite --watermark", watermark=True).remove_watermark is False
    with pytest.raises(InputError, match="given twice"):
        parse("a kite -d 10", duration=15)
    with pytest.raises(InputError, match="given twice"):
        parse("a kite --no-watermark", watermark=True)


# -- property tests -----------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "--duration",
        "-d",
        "--seconds",
        "--ar",
        "--aspect",
        "--landscape",
        "--portrait",
        "--model",
        "-m",
        "--image",
        "--watermark",
        "--no-watermark",
        "--watermark=no",
        "--resize",
        "—duration",
        "–ar",
        "--dur\u200bation",
        "--foo",
        "-",
        "--",
        "—",
        "=",
        "10",
        "15",
        "4",
        "8",
        "5",
        "10s",
        "16:9",
        "9:16",
        "landscape",
        "portrait",
        "1280x720",
        "square",
        "sora-2",
        "sora-2-preview",
        "seedance-2.0",
        "sora-2-pro",
        "sora-2-pro-remix",
        "SORA-2",
        "https://x.y/a.png",
        "pad",
        "crop",
        "\x00",
        "\ud800",
        "\u200d",
        "\u202e",
        '"',
        "“",
        "a",
        "cat",
        "猫",
        "🐈",
        "\n",
    ]
)
_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=50),
    st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=25).map(" ".join),
    st.lists(_PIECES, max_size=25).map("".join),
)


def _check_valid(request: VideoRequest) -> None:
    spec = CATALOG.get(request.model)
    assert request.model == spec.name
    assert request.duration in spec.durations
    assert request.aspect_ratio in spec.aspect_ratios
    assert 0 < len(request.prompt) <= spec.prompt_max_chars
    assert request.prompt == " ".join(request.prompt.split())
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in request.prompt)
    assert spec.selectable or request.base_video_task_id


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, default=st.sampled_from(CATALOG.names(selectable_only=True)))
def test_any_text_gives_a_valid_request_or_an_input_error(text: str, default: str) -> None:
    try:
        request = parse_request(text, CATALOG, default)
    except InputError as err:
        assert str(err)  # every refusal says something
        return
    _check_valid(request)
    # Building again from a stored request (retry, "again") gives the same request.
    rebuilt = validate_request(options_of(request, CATALOG), CATALOG, default)
    assert rebuilt == request


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_clean_prompt_is_idempotent(text: str) -> None:
    once = clean_prompt(text)
    assert clean_prompt(once) == once


# -- chat commands and help ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "args", "rest"),
    [
        ("/sora credits", "credits", [], ""),
        ("credits", "credits", [], ""),
        ("/SORA Credits", "credits", [], ""),
        ("balance", "credits", [], ""),
        ("/sora jobs 20", "jobs", ["20"], "20"),
        ("/sora help", "help", [], ""),
        ("/sora --help", "help", [], ""),
        ("HELP", "help", [], ""),
        ("/sora cancel job-1", "cancel", ["job-1"], "job-1"),
        (
            "/sora admin set-limit slack:T1:U1 50",
            "admin",
            ["set-limit", "slack:T1:U1", "50"],
            "set-limit slack:T1:U1 50",
        ),
        ("/sora a cat --duration 10", "video", [], "a cat --duration 10"),
        ("a cat playing piano", "video", [], "a cat playing piano"),
        ("credits roll over a city skyline", "video", [], "credits roll over a city skyline"),
        ("/sorta a cat", "video", [], "/sorta a cat"),
        ("/sora", "video", [], ""),
        ("", "video", [], ""),
        ("\u200b/sora\u200b credits", "credits", [], ""),
    ],
)
def test_parse_chat_command(text: str, kind: str, args: list[str], rest: str) -> None:
    command = parse_chat_command(text)
    assert (command.kind, command.args, command.text) == (kind, args, rest)


def test_parse_chat_command_passes_huge_text_to_the_video_grammar() -> None:
    command = parse_chat_command("help " * 5000)
    assert command.kind == "video"
    with pytest.raises(InputError, match="characters long"):
        parse(command.text)


def test_usage_text_lists_options_and_orderable_models() -> None:
    text = usage_text(CATALOG, "sora-2")
    assert "sora-2-pro-remix" not in text
    assert "sora-2 (default)" in text
    prices = PriceList.load()
    default = PACKAGED.names()[0]
    text = usage_text(PACKAGED, default, prices)
    for needle in (
        "--duration",
        "-d",
        "--ar",
        "--model",
        "--image",
        "--watermark",
        "--no-watermark",
        "--resize",
        "--quality",
        "--audio",
        "--no-audio",
        "landscape",
        "/sora credits",
    ):
        assert needle in text
    for name in orderable(PACKAGED, prices):
        assert name in text
    assert f"{default} (default)" in text
    spec = PACKAGED.get(default)
    first = quote_choices(PACKAGED, prices, spec, Choices.defaults(spec, spec.durations[0]))
    assert f"{spec.durations[0]}s {fmt_credits(first.credits)}" in text  # from the rules
    assert len(text) < 2000  # fits one Discord message


# -- the packaged catalog's options: quality, audio, ratios, images ---------------------------


def _first_with(predicate: Any) -> str:
    return next(s.name for s in PACKAGED.models if s.selectable and predicate(s))


def test_quality_is_read_in_any_spelling_and_checked_against_the_model() -> None:
    name = _first_with(lambda s: "1080p" in s.qualities)
    spec = PACKAGED.get(name)
    for typed in ("--quality 1080p", "--quality 1080P", "-q 1080", "--resolution=1080p"):
        request = parse_request(f"a kite -m {name} {typed}", PACKAGED, name)
        assert request.quality == "1080p"
    assert parse_request("a kite", PACKAGED, name).quality == spec.default_quality
    with pytest.raises(InputError) as err:
        parse_request(f"a kite -m {name} --quality 999p", PACKAGED, name)
    assert err.value.field == "quality" and err.value.valid == spec.qualities
    plain = _first_with(lambda s: not s.qualities)
    with pytest.raises(InputError, match="has no quality option") as err:
        parse_request(f"a kite -m {plain} --quality 1080p", PACKAGED, plain)
    assert name in err.value.valid


def test_audio_switches_only_where_the_model_has_the_option() -> None:
    name = _first_with(lambda s: s.audio_option)
    spec = PACKAGED.get(name)
    assert parse_request(f"a kite -m {name} --audio", PACKAGED, name).audio is True
    assert parse_request(f"a kite -m {name} --no-audio", PACKAGED, name).audio is False
    assert parse_request(f"a kite -m {name} --audio=off", PACKAGED, name).audio is False
    assert parse_request("a kite", PACKAGED, name).audio is spec.audio_default
    with pytest.raises(InputError, match="given twice"):
        parse_request(f"a kite -m {name} --audio --no-audio", PACKAGED, name)
    plain = _first_with(lambda s: not s.audio_option)
    with pytest.raises(InputError, match="has no audio option") as err:
        parse_request(f"a kite -m {plain} --audio", PACKAGED, plain)
    assert err.value.field == "audio"


def test_extra_ratios_and_required_images_come_from_the_catalog() -> None:
    wide = _first_with(lambda s: "21:9" in s.aspect_ratios and not s.image_required)
    assert parse_request(f"a kite -m {wide} --ar 21:9", PACKAGED, wide).aspect_ratio == "21:9"
    assert parse_request(f"a kite -m {wide} --ar square", PACKAGED, wide).aspect_ratio == "1:1"
    needs = _first_with(lambda s: s.image_required)
    with pytest.raises(InputError, match="--image") as err:
        parse_request(f"a kite -m {needs}", PACKAGED, needs)
    assert err.value.field == "image_url"
    url = "https://example.com/a.png"
    assert parse_request(f"a kite -m {needs} --image {url}", PACKAGED, needs).image_url == url
