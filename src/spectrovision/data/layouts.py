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

A layout's knowledge lives in its class: its run columns (:attr:`Layout.columns`), the
metadata columns carried with each sample (:attr:`Layout.metadata`), the unit of its runs'
time (:attr:`Layout.time_unit`), the columns a conditional prior groups by
(:attr:`Layout.group_columns`) and the samples' extra-channel flag
(:meth:`Layout.render_samples`). A new layout is one class (a :class:`Layout` subclass)
in this file registered in :data:`LAYOUTS` (``@LAYOUTS.register("name")``, or a
``"module:Class"`` string imported when first asked for), its name in the schema's
``data.layout`` enum, and its tests.
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
from ..registry import Registry

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
Records = Sequence[Mapping[str, Any]]

STAGES = ("ingest", "qc", "render")
IMAGE_LAYOUT = "images"
IMAGE_KEYS = ("image_size", "channels", "interpolation", "dtype")  # what an image render reads
IMAGE_ONLY_KEYS = ("image_size", "channels", "interpolation")  # what a run render ignores
#: run-file column names of a layout that names none of its own (``data.columns`` overrides)
DEFAULT_COLUMNS: Mapping[str, str | None] = {"time": "time", "temp": None, "mass": "mass",
                                              "intensity": "intensity"}


#: layout name (config ``data.layout``) -> its class
LAYOUTS: Registry[type[Layout]] = Registry("data layout", "data/layout")


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
    #: canonical run column (time, temp, mass, intensity) -> its name in the layout's run
    #: files; None: the layout names none of its own (:data:`DEFAULT_COLUMNS`)
    columns: ClassVar[Mapping[str, str | None] | None] = None
    #: metadata columns carried with each sample when ``data.metadata_columns`` is null
    metadata: ClassVar[tuple[str, ...]] = ()
    #: metadata columns the conditional prior baseline may group by
    group_columns: ClassVar[tuple[str, ...]] = ()
    #: the unit of the runs' time (what a fixed ``x_window`` on time is in; None: unknown)
    time_unit: ClassVar[str | None] = None
    #: sheet column whose flag fills a representation's extra channel
    #: (``derivatized_channel``; 0 for a sample sheet without it)
    flag_column: ClassVar[str] = "derivatized"

    def __init__(self, name: str) -> None:
        self.name = name

    def render_samples(self, table: Any) -> list[dict[str, Any]]:
        """``sample_id`` and the extra-channel flag (:attr:`flag_column`, 0 when the
        sheet has no such column) of each row of a sample-sheet table, as
        :meth:`render_shard` reads them."""
        flags = (table[self.flag_column] if self.flag_column in table.columns
                 else [0] * len(table))
        return [{"sample_id": sample_id, self.flag_column: int(flag)}
                for sample_id, flag in zip(table["sample_id"], flags)]

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

    def render_view(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        if settings is None:
            return {"log": None, "axes": None}
        spec = library("render.runs").RenderSpec.from_config(
            self.representation_settings(settings))
        axes = library("render.axes").render_axes(spec, self.time_unit)
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


@LAYOUTS.register("mars2")
class Mars2Layout(RunLayout):
    """Mars-2 GC-MS runs ``time,mass,intensity`` (minutes); metadata ``derivatized``."""

    columns = {"time": "time", "temp": None, "mass": "mass", "intensity": "intensity"}
    metadata = group_columns = ("derivatized",)
    time_unit = "min"


@LAYOUTS.register("mars1")
class Mars1Layout(RunLayout):
    """Mars-1 evolved-gas runs ``time,temp,m/z,abundance`` (seconds); metadata
    ``instrument_type``."""

    columns = {"time": "time", "temp": "temp", "mass": "m/z", "intensity": "abundance"}
    metadata = group_columns = ("instrument_type",)
    time_unit = "s"


@LAYOUTS.register("generic")
class GenericLayout(RunLayout):
    """Run tables whose column names come from ``data.columns``."""


@LAYOUTS.register("instrument")
class InstrumentLayout(RunLayout):
    """Instrument run files (``instrument``): ANDI/AIA netCDF, mzML or JCAMP-DX GC-MS, any
    mix, each file's format told by its content (:mod:`spectrovision.data.instrument`);
    cached as the run tables' Parquet runs (time in minutes) and rendered like them."""

    modules = {"ingest": ("data.instrument",), "qc": ("data.instrument",),
               "render": ("render.runs",)}
    # the cached runs' names (instrument files name their arrays themselves)
    columns = {"time": "time", "temp": None, "mass": "mass", "intensity": "intensity"}
    time_unit = "min"

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


@LAYOUTS.register(IMAGE_LAYOUT)
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


def get_layout(name: str) -> Layout:
    """The layout registered under ``name`` (config ``data.layout``)."""
    return LAYOUTS.get(name)(name)


def group_columns() -> tuple[str, ...]:
    """Every layout's :attr:`Layout.group_columns`, in registration order."""
    return tuple(dict.fromkeys(c for name in LAYOUTS for c in LAYOUTS.get(name).group_columns))


def layout_code_version(name: str, stage: str) -> str:
    """Code version of one stage of a layout: the import closure of the module doing it."""
    modules = LAYOUTS.get(name).modules
    if stage not in modules:
        raise ConfigError(f"data.layout '{name}' has no stage '{stage}' "
                          f"(it has {sorted(modules)})")
    return code_version(*modules[stage])


def representation_settings(settings: Mapping[str, Any], layout: str) -> dict[str, Any]:
    """The keys of a representation that ``layout`` reads (images: :data:`IMAGE_KEYS`;
    run layouts: every other key)."""
    return get_layout(layout).representation_settings(settings)
