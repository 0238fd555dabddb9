"""The axes of a representation's images, as figures and tables show them.

An image ``(C, n_mass, n_x)`` has m/z rows ``first_mass .. first_mass + n_mass - 1`` (row 0
is ``mass_window``'s lo, or m/z 0) and ``n_x`` equal columns spanning ``x_extent``: the fixed
``x_window`` in the axis' units (degC, the runs' time unit, e-folds of bleed), or ``(0, 1)``
when every run is min-max scaled to its own range. :func:`render_axes` (a run layout's
:class:`~spectrovision.render.runs.RenderSpec`) and :func:`image_axes` (an image file's
:class:`~spectrovision.render.images.ImageSpec`) build it; the layouts' ``render_view`` hands
it to the report rules as the plain dict of :meth:`RenderAxes.as_dict` (a rule param) and
:meth:`RenderAxes.of` turns that back into one. The render code does not import this
module, so editing a label re-renders nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .images import ImageSpec
    from .runs import RenderSpec

#: x axis name of a run render (``x_axis``) -> its label
X_LABELS = {"time": "time", "temp": "temperature", "bleed": "bleed pseudo-temperature"}
#: unit of a fixed ``x_window`` per ``x_axis`` (time: the layout's time unit, when known)
X_UNITS = {"temp": "degC", "bleed": "e-folds of bleed over the start"}


@dataclass(frozen=True)
class RenderAxes:
    """Rows are m/z ``first_mass + row``; column ``col`` covers
    ``x_extent[0] + [col, col + 1] * (x_extent[1] - x_extent[0]) / n_x``, labelled
    ``x_label`` (``y_label`` for the rows)."""

    first_mass: int
    n_mass: int
    n_x: int
    x_extent: tuple[float, float]
    x_label: str
    y_label: str = "m/z"
    rows_down: bool = False  # image files: row 0 is the top row, drawn at the top

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.x_extent)
        object.__setattr__(self, "x_extent", (lo, hi))
        if self.n_mass < 1 or self.n_x < 1 or not hi > lo:
            raise ConfigError(f"render axes need n_mass, n_x >= 1 and x_extent lo < hi, got "
                              f"n_mass {self.n_mass}, n_x {self.n_x}, x_extent {[lo, hi]}")

    @classmethod
    def of(cls, value: RenderAxes | Mapping[str, Any]) -> RenderAxes:
        """``value`` itself, or the axes its :meth:`as_dict` form describes."""
        if isinstance(value, RenderAxes):
            return value
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"render axes: unknown keys {unknown} (known: {sorted(known)}); "
                              "the rule's axes param comes from the layout's render_view")
        return cls(**dict(value))

    def as_dict(self) -> dict[str, Any]:
        """Plain values (a rule param, recorded in provenance)."""
        return {"first_mass": self.first_mass, "n_mass": self.n_mass, "n_x": self.n_x,
                "x_extent": list(self.x_extent), "x_label": self.x_label,
                "y_label": self.y_label, "rows_down": self.rows_down}

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``imshow`` extent (left, right, bottom, top) for :attr:`origin`: the x extent and
        m/z ``first_mass - 0.5 .. first_mass + n_mass - 0.5`` (each row centred on its m/z;
        top to bottom when ``rows_down``)."""
        low, high = self.first_mass - 0.5, self.first_mass + self.n_mass - 0.5
        return (*self.x_extent, high, low) if self.rows_down else (*self.x_extent, low, high)

    @property
    def origin(self) -> str:
        """``imshow`` origin: m/z up (``lower``), or an image's row 0 at the top (``upper``)."""
        return "upper" if self.rows_down else "lower"

    def mass_at(self, row: int) -> int:
        """The m/z of image row ``row``."""
        return self.first_mass + int(row)

    def x_at(self, col: int) -> float:
        """The x (axis units) of column ``col``'s centre."""
        lo, hi = self.x_extent
        return lo + (int(col) + 0.5) * (hi - lo) / self.n_x

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """A ValueError unless planes of ``shape`` (..., n_mass, n_x) are these axes'."""
        if tuple(shape[-2:]) != (self.n_mass, self.n_x):
            raise ValueError(f"images of {shape[-2]} x {shape[-1]} (m/z x columns) do not "
                             f"match the representation's axes ({self.n_mass} x {self.n_x}); "
                             "re-render the representation after editing it")


def render_axes(spec: RenderSpec, time_unit: str | None = None) -> RenderAxes:
    """The axes of a run render: m/z rows from ``spec.first_mass``; x over ``x_window`` in
    the axis' units (``time_unit``: the runs' time unit, e.g. ``min``, when the layout knows
    it) or over ``(0, 1)`` when every run is min-max scaled to its own range."""
    if spec.x_window is None:
        extent, unit = (0.0, 1.0), "scaled 0-1 per run"
    else:
        lo, hi = spec.x_window
        extent = (float(lo), float(hi))
        unit = X_UNITS.get(spec.x_axis, time_unit or "the runs' time unit")
    return RenderAxes(first_mass=spec.first_mass, n_mass=spec.n_mass, n_x=spec.n_x,
                      x_extent=extent, x_label=f"{X_LABELS[spec.x_axis]} ({unit})")


def image_axes(spec: ImageSpec) -> RenderAxes:
    """The axes of a resized image: pixel rows and columns, each centred on its index (no
    m/z here)."""
    height, width = spec.image_size
    return RenderAxes(first_mass=0, n_mass=height, n_x=width, x_extent=(-0.5, width - 0.5),
                      x_label="image x (pixel column)", y_label="image y (pixel row)",
                      rows_down=True)
