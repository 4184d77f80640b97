"""The simulator's clips (bot/data/clips, made by scripts/make_demo_clips.py): each one lasts
the length in its name, has a video and an audio track, the set stays small, every duration the
packaged catalog offers gets a clip of that length (nearest when none ships), and the simulator
serves the clip of the task's shape and length.

The MP4 is read here with a small box reader (no ffprobe, no PyAV): `mvhd` gives the movie's
length, each `trak`'s `hdlr` its kind and `mdhd` its length, `stsz` its sample count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib import resources
from typing import Any

import httpx
import pytest

from bot.domain.catalog import Catalog
from bot.infra.simulator import Simulator, SimulatorConfig, clip_for
from bot.infra.simulator.world import CLIP_SECONDS, clip_name, clip_seconds

ORIENTATIONS = ("landscape", "portrait", "square")
BUDGET = 400 * 1024  # "a few hundred KB at most in all"
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, bytes]]:
    """(type, payload) of each box in data[start:end]; descends into nothing."""
    found, at, end = [], start, len(data) if end is None else end
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
            header = 16
        assert size >= header and at + size <= end, f"a broken {kind!r} box"
        found.append((kind, data[at + header : at + size]))
        at += size
    assert at == end, "trailing bytes after the last box"
    return found


def child(payload: bytes, kind: bytes) -> bytes:
    matches = [p for k, p in boxes(payload) if k == kind]
    assert len(matches) == 1, f"{kind!r} appears {len(matches)} times"
    return matches[0]


def seconds_of(full_box: bytes) -> float:
    """The length in mvhd/mdhd (versions 0 and 1)."""
    if full_box[0] == 1:
        timescale, duration = struct.unpack(">IQ", full_box[20:32])
    else:
        timescale, duration = struct.unpack(">II", full_box[12:20])
    return float(duration) / float(timescale)


@dataclass
class Track:
    kind: str  # "vide" | "soun"
    seconds: float
    samples: int


@dataclass
class Movie:
    brand: bytes
    seconds: float
    tracks: list[Track]


def read_mp4(data: bytes) -> Movie:
    top = dict(boxes(data))
    assert b"ftyp" in top and b"moov" in top and b"mdat" in top
    moov = top[b"moov"]
    tracks = []
    for kind, trak in boxes(moov):
        if kind != b"trak":
            continue
        mdia = child(trak, b"mdia")
        handler = child(mdia, b"hdlr")[8:12].decode()
        stsz = child(child(child(mdia, b"minf"), b"stbl"), b"stsz")
        samples = struct.unpack(">I", stsz[8:12])[0]
        tracks.append(Track(handler, seconds_of(child(mdia, b"mdhd")), samples))
    return Movie(top[b"ftyp"][:4], seconds_of(child(moov, b"mvhd")), tracks)


def packaged(orientation: str, seconds: int) -> bytes:
    name = clip_name(orientation, seconds)
    return resources.files("bot").joinpath(f"data/clips/{name}").read_bytes()


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_every_clip_lasts_its_length_and_has_a_video_and_an_audio_track(orientation: str) -> None:
    for seconds in CLIP_SECONDS:
        movie = read_mp4(packaged(orientation, seconds))
        assert movie.brand in (b"isom", b"mp42")
        assert abs(movie.seconds - seconds) < 0.1, (orientation, seconds, movie.seconds)
        kinds = {t.kind: t for t in movie.tracks}
        assert set(kinds) == {"vide", "soun"}, "players show audio only when there is a track"
        assert abs(kinds["vide"].seconds - seconds) < 0.3
        assert abs(kinds["soun"].seconds - seconds) < 0.3
        assert kinds["vide"].samples >= seconds * 4 and kinds["soun"].samples > 0


def test_the_clips_stay_small_and_nothing_else_is_shipped() -> None:
    folder = resources.files("bot").joinpath("data/clips")
    shipped = {entry.name: len(entry.read_bytes()) for entry in folder.iterdir()}
    expected = {clip_name(o, s) for o in ORIENTATIONS for s in CLIP_SECONDS}
    assert set(shipped) == expected
    assert sum(shipped.values()) <= BUDGET


def test_every_duration_the_catalog_offers_gets_a_clip_of_its_length() -> None:
    catalog = Catalog.load()
    offered = {d for spec in catalog.models for d in spec.durations}
    assert offered, "the catalog offers durations"
    for duration in offered:
        nearest = clip_seconds(duration)
        if min(CLIP_SECONDS) <= duration <= max(CLIP_SECONDS):
            assert nearest == duration
        else:
            assert nearest in (min(CLIP_SECONDS), max(CLIP_SECONDS))
    assert clip_seconds(None) == min(CLIP_SECONDS)
    assert clip_seconds(60) == max(CLIP_SECONDS)


async def test_the_simulator_serves_the_clip_of_the_tasks_shape_and_length() -> None:
    cases: list[tuple[str, int, str]] = [
        ("16:9", 4, "landscape"),
        ("720x1280", 8, "portrait"),
        ("1:1", 12, "square"),
        ("9:16", 15, "portrait"),
    ]
    auth = {"Authorization": "Bearer sk-test"}
    async with (
        Simulator.serve(SimulatorConfig(task_seconds=0.2)) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=auth) as http,
    ):
        ids = []
        catalog = Catalog.load()
        for ratio, seconds, _ in cases:
            # a model that takes this ratio and length (the simulator is strict, as EvoLink)
            spec = next(
                s
                for s in catalog.models
                if s.selectable
                and not s.image_required
                and ratio in s.aspect_ratios
                and seconds in s.durations
            )
            body: dict[str, Any] = {
                "model": spec.name,
                "prompt": "a paper boat",
                "aspect_ratio": ratio,
                "duration": seconds,
            }
            answer = await http.post("/v1/videos/generations", json=body)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])
        for task_id, (ratio, seconds, orientation) in zip(ids, cases, strict=True):
            await sim.wait_settled(task_id)
            url = (await http.get(f"/v1/tasks/{task_id}")).json()["results"][0]
            video = (await http.get(url)).content
            assert video == packaged(orientation, seconds) == clip_for(ratio, seconds)
            assert video == sim.clip_of(task_id)
            assert abs(read_mp4(video).seconds - seconds) < 0.1
