"""Data layouts (config ``data.layout``): one registered class per layout.

A layout says how one shard of samples is ingested, how the shards' QC tables become one
table and a summary, how one shard is rendered for a representation, and which keys of a
representation it reads. The workflow's rules and scripts are the same for every layout:
they ask :func:`get_layout` for the configured one.

Each class names, per stage, the library modules that do the stage's work
(:attr:`Layout.modules`, strings): they are imported only when the stage runs, so this
registry imports no layout's code, and a stage's code version
(:func:`layout_code_version`) is the import closure of those modules. Editing the image code
re-runs no job of the run layouts, and editing the render code re-runs no ingest.

A new layout is one class (a :class:`Layout` subclass) plus its tests, registered with
:func:`register_layout` (built-in layouts are listed in :data:`LAYOUTS`).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from ..errors import ConfigError
from ..provenance.code import PACKAGE, code_version

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
Records = Sequence[Mapping[str, Any]]

STAGES = ("ingest", "qc", "render")
IMAGE_LAYOUT = "images"
IMAGE_KEYS = ("image_size", "channels", "interpolation", "dtype")  # what an image render reads
IMAGE_ONLY_KEYS = ("image_size", "channels", "interpolation")  # what a run render ignores


class Layout:
    """A data layout. Subclasses set :attr:`modules` and implement the three stages.

    - ``ingest_shard(samples=, outputs={runs, qc}, settings={columns, qc})``: cache every
      sample of a shard under ``outputs["runs"]`` and write the shard's QC table to
      ``outputs["qc"]``; returns counts for the job's provenance (``n_samples``, ...).
    - ``write_qc_summary(inputs={shards}, outputs={qc, summary}, findings=)``: every
      shard's QC table as one table and a Markdown summary.
    - ``render_shard(samples=, inputs={runs}, outputs={images}, settings=)``: one array
      per sample, ``settings`` = :meth:`representation_settings` of a representation.
    """

    #: stage (:data:`STAGES`) -> the library modules its methods use, relative to the
    #: package (``"data.ingest"``); the stage's code version is their import closure.
    modules: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init__(self, name: str) -> None:
        self.name = name

    def representation_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The keys of a representation this layout's render reads (editing another key
        re-renders nothing)."""
        raise NotImplementedError

    def render_view(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """How reports draw a representation's images: ``log`` mode and ``axes`` (the
        :meth:`~spectrovision.render.axes.RenderAxes.as_dict` of its m/z rows and x
        columns; ``settings`` None: no representation is configured, both None)."""
        raise NotImplementedError

    def image_shape(self, settings: Mapping[str, Any]) -> tuple[int, int, int]:
        """``(channels, height, width)`` of a representation's images (known at parse time,
        so a model that cannot run on them is refused before any job starts)."""
        raise NotImplementedError

    def ingest_shard(self, *, samples: Records, outputs: Mapping[str, PathLike],
                     settings: Mapping[str, Any]) -> dict[str, int]:
        raise NotImplementedError

    def write_qc_summary(self, *, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                         findings: Mapping[str, Sequence[str]]) -> None:
        raise NotImplementedError

    def render_shard(self, *, samples: Records, inputs: Mapping[str, PathLike],
                     outputs: Mapping[str, PathLike], settings: Mapping[str, Any]
                     ) -> list[Path]:
        raise NotImplementedError


def library(module: str) -> ModuleType:
    """A library module (``"data.ingest"``), imported now: a layout's methods reach their
    code through this, so the registry's own import closure holds no layout's code."""
    return importlib.import_module(f"{PACKAGE}.{module}")


def shard_renderer(module: str, function: str, spec: str) -> Callable[..., list[Path]]:
    """A :meth:`Layout.render_shard` that calls ``module.function(run_dir, samples,
    out_dir, module.spec.from_config(settings))``."""

    def render_shard(self: Layout, *, samples: Records, inputs: Mapping[str, PathLike],
                     outputs: Mapping[str, PathLike], settings: Mapping[str, Any]
                     ) -> list[Path]:
        found = library(module)
        return getattr(found, function)(inputs["runs"], samples, outputs["images"],
                                        getattr(found, spec).from_config(settings))

    return render_shard


class RunLayout(Layout):
    """Run tables (``mars2``, ``mars1``, ``generic``): CSV runs cached as Parquet, rendered
    into (channels, mass, time or temperature) images."""

    modules = {"ingest": ("data.ingest", "data.sheet"), "qc": ("data.ingest",),
               "render": ("render.runs",)}

    def representation_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in settings.items() if k not in IMAGE_ONLY_KEYS}

    #: layout name -> the time unit of its runs (what a fixed ``x_window`` on time is in)
    time_units: ClassVar[Mapping[str, str]] = {"mars2": "min", "mars1": "s",
                                               "instrument": "min"}

    def render_view(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        if settings is None:
            return {"log": None, "axes": None}
        spec = library("render.runs").RenderSpec.from_config(
            self.representation_settings(settings))
        axes = library("render.axes").render_axes(spec, self.time_units.get(self.name))
        return {"log": spec.log, "axes": axes.as_dict()}

    def ingest_shard(self, *, samples: Records, outputs: Mapping[str, PathLike],
                     settings: Mapping[str, Any]) -> dict[str, int]:
        columns = library("data.sheet").RunColumns(**settings["columns"])
        qc = library("data.ingest").ingest_shard(samples, outputs["runs"], outputs["qc"],
                                                 columns, settings["qc"])
        counts = {"n_samples": len(qc), "n_rows": int(qc["n_rows"].sum())}
        log.info("ingested %d runs, %d rows kept", counts["n_samples"], counts["n_rows"])
        return counts

    def write_qc_summary(self, *, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                         findings: Mapping[str, Sequence[str]]) -> None:
        library("data.ingest").write_qc_summary(list(inputs["shards"]), outputs["qc"],
                                                outputs["summary"], findings)

    render_shard = shard_renderer("render.runs", "render_shard", "RenderSpec")

    def image_shape(self, settings: Mapping[str, Any]) -> tuple[int, int, int]:
        spec = library("render.runs").RenderSpec
        return tuple(spec.from_config(self.representation_settings(settings)).shape)


class InstrumentLayout(RunLayout):
    """Instrument run files (``instrument``): ANDI/AIA netCDF, mzML or JCAMP-DX GC-MS, any
    mix, each file's format told by its content (:mod:`spectrovision.data.instrument`);
    cached as the run tables' Parquet runs (time in minutes) and rendered like them."""

    modules = {"ingest": ("data.instrument",), "qc": ("data.instrument",),
               "render": ("render.runs",)}

    def ingest_shard(self, *, samples: Records, outputs: Mapping[str, PathLike],
                     settings: Mapping[str, Any]) -> dict[str, int]:
        qc = library("data.instrument").ingest_instrument_shard(
            samples, outputs["runs"], outputs["qc"], settings["qc"])
        counts = {"n_samples": len(qc), "n_rows": int(qc["n_rows"].sum())}
        log.info("ingested %d instrument runs (%s), %d rows kept", counts["n_samples"],
                 ", ".join(f"{k} {v}" for k, v in qc["format"].value_counts().items()),
                 counts["n_rows"])
        return counts

    def write_qc_summary(self, *, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                         findings: Mapping[str, Sequence[str]]) -> None:
        instrument = library("data.instrument")
        library("data.ingest").write_qc_summary(
            list(inputs["shards"]), outputs["qc"], outputs["summary"], findings,
            summarize=instrument.summarize_instrument_qc,
            schema=instrument.INSTRUMENT_QC_SCHEMA)


class ImageLayout(Layout):
    """Image files (``images``): decoded pixels cached as NPY, resized per representation
    (see :mod:`spectrovision.data.images` and :mod:`spectrovision.render.images`)."""

    modules = {"ingest": ("data.images",), "qc": ("data.ingest", "data.images"),
               "render": ("render.images",)}

    def representation_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {k: settings[k] for k in IMAGE_KEYS if k in settings}

    def render_view(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        if settings is None:
            return {"log": "linear", "axes": None}
        spec = library("render.images").ImageSpec.from_config(
            self.representation_settings(settings))
        return {"log": "linear", "axes": library("render.axes").image_axes(spec).as_dict()}

    def ingest_shard(self, *, samples: Records, outputs: Mapping[str, PathLike],
                     settings: Mapping[str, Any]) -> dict[str, int]:
        qc = library("data.images").ingest_image_shard(samples, outputs["runs"], outputs["qc"],
                                                       settings["qc"]["check_md5"])
        return {"n_samples": len(qc)}

    def write_qc_summary(self, *, inputs: Mapping[str, Any], outputs: Mapping[str, PathLike],
                         findings: Mapping[str, Sequence[str]]) -> None:
        images = library("data.images")
        library("data.ingest").write_qc_summary(
            list(inputs["shards"]), outputs["qc"], outputs["summary"], findings,
            summarize=images.summarize_image_qc, schema=images.IMAGE_QC_SCHEMA)

    render_shard = shard_renderer("render.images", "render_image_shard", "ImageSpec")

    def image_shape(self, settings: Mapping[str, Any]) -> tuple[int, int, int]:
        spec = library("render.images").ImageSpec
        return tuple(spec.from_config(self.representation_settings(settings)).shape)


#: layout name -> its class (a class, or ``"module:Class"`` imported when first asked for)
LAYOUTS: dict[str, type[Layout] | str] = {
    "mars2": RunLayout, "mars1": RunLayout, "generic": RunLayout,
    "instrument": InstrumentLayout, IMAGE_LAYOUT: ImageLayout,
}


def register_layout(name: str, layout: type[Layout] | str) -> None:
    """Register a layout class (or ``"module:Class"``, imported lazily) under ``name``."""
    LAYOUTS[name] = layout


def layout_class(name: str) -> type[Layout]:
    if name not in LAYOUTS:
        raise ConfigError(f"data.layout: '{name}' is not one of {sorted(LAYOUTS)}")
    found = LAYOUTS[name]
    if isinstance(found, str):
        module, _, attribute = found.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        LAYOUTS[name] = found
    return found


def get_layout(name: str) -> Layout:
    """The layout registered under ``name`` (config ``data.layout``)."""
    return layout_class(name)(name)


def layout_code_version(name: str, stage: str) -> str:
    """Code version of one stage of a layout: the import closure of the module doing it."""
    modules = layout_class(name).modules
    if stage not in modules:
        raise ConfigError(f"data.layout '{name}' has no stage '{stage}' "
                          f"(it has {sorted(modules)})")
    return code_version(*modules[stage])


def representation_settings(settings: Mapping[str, Any], layout: str) -> dict[str, Any]:
    """The keys of a representation that ``layout`` reads (images: :data:`IMAGE_KEYS`;
    run layouts: every other key)."""
    return get_layout(layout).representation_settings(settings)
