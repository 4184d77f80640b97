"""The model catalog: which video models exist and what each accepts.

The catalog is data (`bot/data/catalog.json`, or the operator's file named by `CATALOG_PATH`),
not code: adding a model needs no code change. Prices are not in it: every quote is worked out
from EvoLink's price list (`bot.domain.offer`, `bot.domain.pricing`), and a model that list
does not offer cannot be ordered, whatever the catalog says.

Invariants (checked when the file is loaded; a file that breaks one is refused with a
`ConfigError` naming the file and the problem):
- Model names are unique, compared case-insensitively; lookups are case-insensitive and
  return the catalog's own spelling.
- `default_duration` is in `durations`, `default_aspect_ratio` in `aspect_ratios`,
  `default_resize_mode` in `resize_modes`; every alias in `ratio_aliases` points at one of
  the model's own `aspect_ratios`.
- `default_quality` is in `qualities` (and present exactly when there are qualities);
  `audio_default` is set exactly when `audio_option` is; `image_required` needs
  `image_input`.
- A remix model (`remix_of` non-empty) has `requires_base_task`; it names existing,
  non-remix models, and each model has at most one remix model.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from bot.domain.errors import ConfigError, InputError

PACKAGED_CATALOG = "packaged catalog (bot/data/catalog.json)"


def ratio_key(text: str) -> str:
    """The comparison form of a ratio spelling: `１６：９` → `16:9`, `1280×720` → `1280x720`."""
    key = unicodedata.normalize("NFKC", text).strip().strip("\"'“”‘’").casefold()
    return key.replace("×", "x").replace(" ", "").replace("/", ":")


def join_choices(values: Iterable[object]) -> str:
    """`[10, 15]` → ``10 or 15``; `[4, 8, 12]` → ``4, 8 or 12``."""
    items = [str(v) for v in values]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


class ModelSpec(BaseModel):
    """One model: its options in the model's own spelling (its prices are EvoLink's rules)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    label: str = Field(min_length=1)
    durations: tuple[int, ...] = Field(min_length=1)
    default_duration: int
    aspect_ratios: tuple[str, ...] = Field(min_length=1)
    default_aspect_ratio: str
    # Other spellings (landscape, 16:9, 1280x720…) → one of `aspect_ratios`.
    ratio_aliases: dict[str, str] = Field(default_factory=dict)
    prompt_max_chars: int = Field(gt=0)
    prompt_note: str | None = None
    image_input: bool = False
    # An image-to-video or reference model: a request without an image is refused.
    image_required: bool = False
    max_images: int = Field(default=0, ge=0)
    image_note: str | None = None
    # Output quality / resolution in the model's spelling ("720p", "1080p", "4k").
    qualities: tuple[str, ...] = ()
    default_quality: str | None = None
    # Whether the user may turn generated audio on or off, and what it is when they don't say.
    audio_option: bool = False
    audio_default: bool | None = None
    # The request field of the audio switch: `generate_audio` (true/false) or `sound`
    # ("on"/"off", Kling).
    audio_field: Literal["generate_audio", "sound"] = "generate_audio"
    watermark_option: bool = False
    remove_watermark_default: bool | None = None
    resize_modes: tuple[str, ...] = ()
    default_resize_mode: str | None = None
    remix_of: tuple[str, ...] = ()
    requires_base_task: bool = False

    _ratio_lookup: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        where = f"model {self.name!r}"
        if len(set(self.durations)) != len(self.durations) or min(self.durations) <= 0:
            raise ValueError(f"{where}: durations must be distinct positive seconds")
        if self.default_duration not in self.durations:
            raise ValueError(
                f"{where}: default_duration {self.default_duration} is not in durations "
                f"{list(self.durations)}"
            )
        if self.default_aspect_ratio not in self.aspect_ratios:
            raise ValueError(
                f"{where}: default_aspect_ratio {self.default_aspect_ratio!r} is not in "
                f"aspect_ratios {list(self.aspect_ratios)}"
            )
        if bool(self.qualities) != (self.default_quality is not None):
            raise ValueError(f"{where}: qualities and default_quality go together")
        if self.default_quality is not None and self.default_quality not in self.qualities:
            raise ValueError(
                f"{where}: default_quality {self.default_quality!r} is not in qualities "
                f"{list(self.qualities)}"
            )
        if self.audio_option != (self.audio_default is not None):
            raise ValueError(f"{where}: audio_option and audio_default go together")
        if self.image_required and not self.image_input:
            raise ValueError(f"{where}: image_required needs image_input true")
        if self.watermark_option and self.remove_watermark_default is None:
            raise ValueError(f"{where}: watermark_option needs remove_watermark_default")
        if not self.watermark_option and self.remove_watermark_default is not None:
            raise ValueError(f"{where}: remove_watermark_default needs watermark_option true")
        if self.image_input != (self.max_images > 0):
            raise ValueError(f"{where}: image_input true needs max_images ≥ 1, false needs 0")
        resize_default = self.default_resize_mode
        if resize_default is not None and resize_default not in self.resize_modes:
            raise ValueError(
                f"{where}: default_resize_mode {self.default_resize_mode!r} is not in "
                f"resize_modes {list(self.resize_modes)}"
            )
        if self.remix_of and not self.requires_base_task:
            raise ValueError(f"{where}: a remix model (remix_of) needs requires_base_task true")
        lookup = {ratio_key(r): r for r in self.aspect_ratios}
        for alias, target in self.ratio_aliases.items():
            if target not in self.aspect_ratios:
                raise ValueError(
                    f"{where}: ratio_aliases maps {alias!r} to {target!r}, which is not in "
                    f"aspect_ratios {list(self.aspect_ratios)}"
                )
            lookup.setdefault(ratio_key(alias), target)
        self._ratio_lookup = lookup
        return self

    # -- questions the grammar and the service ask --------------------------------------

    @property
    def selectable(self) -> bool:
        """Whether a user may name this model directly (remix models need a base task)."""
        return not self.requires_base_task

    def normalize_ratio(self, text: str) -> str | None:
        """Any accepted spelling (`16:9`, `landscape`, `1280x720`…) → the model's own, or None."""
        return self._ratio_lookup.get(ratio_key(text))

    def ratio_spellings(self) -> list[str]:
        """Everything `normalize_ratio` accepts, own spellings first (for help and errors)."""
        own = list(self.aspect_ratios)
        return own + [alias for alias in self.ratio_aliases if alias not in own]

    def normalize_quality(self, text: str) -> str | None:
        """`1080P`, `1080` → the model's own `1080p`; `4K` → `4k`; None when not offered."""
        key = ratio_key(text)
        for quality in self.qualities:
            if key in (quality.casefold(), quality.casefold().removesuffix("p")):
                return quality
        return None


class Catalog(BaseModel):
    """All models an operator offers. Build it with `Catalog.load`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    notes: str | None = None
    models: tuple[ModelSpec, ...] = Field(min_length=1)

    _by_key: dict[str, ModelSpec] = PrivateAttr(default_factory=dict)
    _remix_for: dict[str, str] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default=PACKAGED_CATALOG)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        by_key: dict[str, ModelSpec] = {}
        for spec in self.models:
            key = spec.name.casefold()
            if key in by_key:
                raise ValueError(f"model name {spec.name!r} appears twice")
            by_key[key] = spec
        remixed_by: dict[str, str] = {}
        for spec in self.models:
            for base in spec.remix_of:
                target = by_key.get(base.casefold())
                if target is None:
                    raise ValueError(f"model {spec.name!r}: remix_of names unknown model {base!r}")
                if target.remix_of:
                    raise ValueError(f"model {spec.name!r}: remix_of names remix model {base!r}")
                if target.name in remixed_by:
                    raise ValueError(
                        f"models {remixed_by[target.name]!r} and {spec.name!r} both remix {base!r}"
                    )
                remixed_by[target.name] = spec.name
        if not any(spec.selectable for spec in self.models):
            raise ValueError("no model can be ordered directly (all require a base task)")
        self._by_key = by_key
        self._remix_for = remixed_by
        return self

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str | None = None) -> Catalog:
        """The packaged catalog (None) or the operator's JSON file; ConfigError when unusable."""
        if path is None:
            source = PACKAGED_CATALOG
            try:
                raw = resources.files("bot").joinpath("data/catalog.json").read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"The {source} cannot be read: {exc}") from None
        else:
            file = Path(path)
            source = f"catalog file {file} (CATALOG_PATH)"
            try:
                raw = file.read_text("utf-8")
            except FileNotFoundError:
                raise ConfigError(f"The {source} does not exist.") from None
            except IsADirectoryError:
                raise ConfigError(f"The {source} is a directory, not a JSON file.") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"The {source} cannot be read: {exc}") from None
        return cls.from_json(raw, source=source)

    @classmethod
    def from_json(cls, raw: str, *, source: str = "catalog") -> Catalog:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"The {source} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}."
            ) from None
        try:
            catalog = cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors()[:5]:
                loc = ".".join(str(part) for part in err["loc"]) or "top level"
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{loc}: {msg}")
            more = "" if exc.error_count() <= 5 else f"\n  … and {exc.error_count() - 5} more"
            raise ConfigError(
                f"The {source} is not a valid catalog:\n  " + "\n  ".join(problems) + more
            ) from None
        catalog._source = source
        return catalog

    # -- lookups --------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """Where this catalog came from, for `check` and error messages."""
        return self._source

    def names(self, *, selectable_only: bool = False) -> list[str]:
        """Model names in catalog order; `selectable_only` leaves out remix models."""
        return [s.name for s in self.models if s.selectable or not selectable_only]

    def find(self, name: str) -> ModelSpec | None:
        key = unicodedata.normalize("NFKC", name).strip().strip("\"'“”‘’").casefold()
        return self._by_key.get(key)

    def get(self, name: str) -> ModelSpec:
        """The model called `name` (any case); InputError listing the valid names otherwise."""
        spec = self.find(name)
        if spec is None:
            valid = self.names(selectable_only=True)
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise InputError(
                f"Unknown model {shown!r}. Choose one of: {', '.join(valid)}.",
                field="model",
                valid=valid,
            )
        return spec

    def check_default_model(self, name: str) -> ModelSpec:
        """For start-up: DEFAULT_MODEL must name a model users can order directly."""
        spec = self.find(name)
        if spec is None or not spec.selectable:
            raise ConfigError(
                f"DEFAULT_MODEL {name!r} is not a model of the {self.source} that can be ordered "
                f"directly; choose one of: {', '.join(self.names(selectable_only=True))}."
            )
        return spec

    def remix_model_for(self, name: str) -> str | None:
        """The model that remixes videos made by `name` (None when there is none)."""
        spec = self.find(name)
        if spec is None:
            return None
        return self._remix_for.get(spec.name)
