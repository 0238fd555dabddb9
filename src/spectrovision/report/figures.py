"""Report figures and tables: pure functions from arrays/DataFrames to matplotlib figures.

Nothing here reads or writes files except the ``run_*`` entry points at the bottom, which
workflow/scripts/report_*.py call (one each); figures are saved with
:func:`spectrovision.io.save_figure`.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..ensemble.rows import ENSEMBLE_ROWS  # noqa: E402
from ..metrics import to_probs  # noqa: E402
from ..render.axes import RenderAxes  # noqa: E402

PathLike = str | os.PathLike[str]
LOG_LABELS = {"log1p1000": "log10(1 + 1000 a)", "clipped_log10": "log10(max(a, floor))",
              "none": "a (log colour scale)"}
MEMBER_COLOURS = {"model": "tab:blue", "baseline": "tab:grey", "ensemble": "tab:orange"}


# --- example renders ----------------------------------------------------------------------
def render_grid(images: np.ndarray, sample_ids: Sequence[str], *, axes: RenderAxes,
                log_mode: str = "log1p1000", title: str = "") -> Figure:
    """Channel 0 of a few rendered samples ``(N, C, n_mass, n_x)`` side by side on the
    representation's ``axes`` (m/z up, its time, temperature or scaled x across), one shared
    colour scale. Intensities rendered without a log (``log_mode='none'``) are shown on a
    log colour scale."""
    n = len(images)
    if n == 0:
        raise ValueError("render_grid needs at least one image")
    planes = np.asarray(images[:, 0], dtype=np.float32)
    axes.check_shape(planes.shape)
    norm = intensity_norm(planes, log_mode)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False,
                             constrained_layout=True)
    for ax, plane, sample_id in zip(grid.flat, planes, sample_ids):
        shown = ax.imshow(plane, origin=axes.origin, aspect="auto", norm=norm, cmap="magma",
                          extent=axes.extent, interpolation="nearest")
        ax.set_title(str(sample_id), fontsize=9)
        ax.set_xlabel(axes.x_label)
        ax.set_ylabel(axes.y_label)
    for ax in list(grid.flat)[n:]:
        ax.axis("off")
    fig.colorbar(shown, ax=grid, label=LOG_LABELS.get(log_mode, log_mode), shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def intensity_norm(planes: np.ndarray, log_mode: str) -> Normalize:
    """Colour scale: images already log-scaled get a linear one; raw intensities a log one."""
    if log_mode != "none":
        return Normalize(vmin=float(planes.min()), vmax=float(planes.max()) or 1.0)
    positive = planes[planes > 0]
    low = float(positive.min()) if positive.size else 1e-6
    return LogNorm(vmin=low, vmax=max(float(planes.max()), low * 10))


# --- training curves ----------------------------------------------------------------------
def curve_grid(curves: Mapping[tuple[str, int], np.ndarray]) -> Figure:
    """Tile the train jobs' curve.png images: one row per model, one column per fold."""
    if not curves:
        raise ValueError("curve_grid needs at least one curve image")
    models = sorted({m for m, _ in curves})
    folds = sorted({f for _, f in curves})
    fig, axes = plt.subplots(len(models), len(folds), squeeze=False,
                             figsize=(4 * len(folds), 3 * len(models)), constrained_layout=True)
    for i, model in enumerate(models):
        for j, fold in enumerate(folds):
            ax = axes[i, j]
            ax.axis("off")
            if (model, fold) in curves:
                ax.imshow(curves[(model, fold)])
                ax.set_title(f"{model} fold {fold}", fontsize=9)
    return fig


# --- out-of-fold scores -------------------------------------------------------------------
def per_label_loss_table(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores.csv`` (member, label, log_loss) as a label x member table, the ``mean`` row
    last and members ordered by mean loss (best first)."""
    table = scores.pivot(index="label", columns="member", values="log_loss")
    labels = [lab for lab in dict.fromkeys(scores["label"]) if lab != "mean"]
    order = list(table.index.intersection(["mean"]))
    table = table.loc[labels + order]
    if "mean" in table.index:
        table = table[table.loc["mean"].sort_values(kind="stable").index]
    table.columns.name = None
    return table


def member_kind(member: str, baselines: Sequence[str]) -> str:
    if member in ENSEMBLE_ROWS:
        return "ensemble"
    return "baseline" if member in baselines else "model"


def per_label_loss_bars(table: pd.DataFrame, baselines: Sequence[str] = ()) -> Figure:
    """Grouped bars: out-of-fold log loss per label (``mean`` excluded), one bar per member."""
    body = table.drop(index="mean", errors="ignore")
    members = list(body.columns)
    x = np.arange(len(body.index))
    width = 0.8 / max(len(members), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(x) * max(len(members), 1) / 2), 4),
                           constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    for k, member in enumerate(members):
        hatch = "//" if member_kind(member, baselines) == "baseline" else None
        ax.bar(x + (k - (len(members) - 1) / 2) * width, body[member].to_numpy(), width,
               label=member, color=cmap(k % 10), hatch=hatch)
    ax.set_xticks(x, body.index, rotation=45, ha="right")
    ax.set_ylabel("out-of-fold log loss (lower is better)")
    ax.legend(fontsize=8, ncols=2)
    return fig


def baseline_comparison(table: pd.DataFrame, baselines: Sequence[str] = ()) -> Figure:
    """Mean out-of-fold log loss per member, models vs baselines vs the ensemble."""
    if "mean" not in table.index:
        raise ValueError("the scores table has no 'mean' row")
    mean = table.loc["mean"].sort_values(kind="stable")
    colours = [MEMBER_COLOURS[member_kind(m, baselines)] for m in mean.index]
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(mean) + 1.2), constrained_layout=True)
    ax.barh(mean.index[::-1], mean.to_numpy()[::-1], color=colours[::-1])
    for y, value in enumerate(mean.to_numpy()[::-1]):
        ax.text(value, y, f" {value:.4f}", va="center", fontsize=8)
    ax.set_xlabel("mean out-of-fold log loss (lower is better)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in MEMBER_COLOURS.values()]
    ax.legend(handles, list(MEMBER_COLOURS), fontsize=8, loc="lower right")
    return fig


# --- calibration ----------------------------------------------------------------------------
def reliability_table(y: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Pooled over labels: per equal-width probability bin, the count, mean predicted
    probability and observed positive rate (empty bins left out)."""
    y_flat = np.asarray(y, dtype=float).ravel()
    p_flat = np.asarray(probs, dtype=float).ravel()
    if y_flat.shape != p_flat.shape:
        raise ValueError(f"labels {np.shape(y)} and probabilities {np.shape(probs)} differ")
    bins = np.minimum((p_flat * n_bins).astype(int), n_bins - 1)
    rows = [{"bin": b, "count": int(m.sum()), "mean_predicted": float(p_flat[m].mean()),
             "observed_rate": float(y_flat[m].mean())}
            for b in range(n_bins) if (m := bins == b).any()]
    return pd.DataFrame(rows, columns=["bin", "count", "mean_predicted", "observed_rate"])


def expected_calibration_error(table: pd.DataFrame) -> float:
    weights = table["count"] / table["count"].sum()
    return float((weights * (table["mean_predicted"] - table["observed_rate"]).abs()).sum())


def calibration_plot(table: pd.DataFrame, title: str = "ensemble, out-of-fold") -> Figure:
    """Reliability diagram: observed positive rate against mean predicted probability."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o",
            label=f"{title} (ECE {expected_calibration_error(table):.3f})")
    for _, row in table.iterrows():
        ax.annotate(str(int(row["count"])), (row["mean_predicted"], row["observed_rate"]),
                    fontsize=7, textcoords="offset points", xytext=(3, -8))
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability",
           ylabel="observed positive rate")
    ax.legend(fontsize=8, loc="upper left")
    return fig


# --- member correlation ---------------------------------------------------------------------
def member_correlation(oof: Mapping[str, pd.DataFrame], labels: Sequence[str]) -> pd.DataFrame:
    """Pearson correlation of members' OOF logits (all labels pooled), on the samples every
    member covers, rows aligned by ``sample_id``."""
    common = set.intersection(*(set(t["sample_id"]) for t in oof.values()))
    if len(common) < 2:
        raise ValueError("members share fewer than 2 out-of-fold samples")
    ids = sorted(common)
    flat = {name: t.set_index("sample_id").loc[ids, list(labels)].to_numpy(float).ravel()
            for name, t in oof.items()}
    return pd.DataFrame(flat).corr()


def correlation_heatmap(corr: pd.DataFrame) -> Figure:
    n = len(corr)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n), constrained_layout=True)
    shown = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), corr.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), corr.index)
    for i in range(n):
        for j in range(n):
            value = corr.iat[i, j]
            ax.text(j, i, "-" if np.isnan(value) else f"{value:.2f}", ha="center",
                    va="center", fontsize=7)
    fig.colorbar(shown, ax=ax, label="correlation of OOF logits")
    return fig


# --- ensemble selection ---------------------------------------------------------------------
def selection_path_plot(selection: Mapping[str, Any]) -> Figure:
    """Greedy selection: OOF loss after each add/remove step; bagged selection: each member's
    weight (its share of the bags, the mean over labels); for ``all``/``list`` selections
    (no path) the chosen members' own mean losses."""
    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    path = selection.get("greedy_path") or []
    if selection.get("selection") == "bagged":
        chosen = list(selection.get("members", []))
        weights = selection.get("weights", {})
        ax.bar(chosen, [float(np.mean(list(weights[m].values()))) for m in chosen])
        ax.set_ylabel(f"weight (share of {len(selection.get('bags', []))} bags)")
        ax.tick_params(axis="x", rotation=45)
    elif path:
        steps = [p["step"] for p in path]
        ax.plot(steps, [p["loss"] for p in path], marker="o")
        for p in path:
            sign = "+" if p["action"] == "add" else "-"
            ax.annotate(f"{sign}{p['member']}", (p["step"], p["loss"]), fontsize=8,
                        textcoords="offset points", xytext=(4, 4))
        ax.set_xticks(steps)
        ax.set(xlabel="selection step", ylabel="ensemble OOF mean log loss")
    else:
        losses = selection.get("oof_mean_log_loss", {})
        chosen = list(selection.get("members", []))
        ax.bar(chosen, [losses.get(m, np.nan) for m in chosen])
        ax.set_ylabel("member OOF mean log loss")
        ax.tick_params(axis="x", rotation=45)
    ax.set_title(f"selection '{selection.get('selection')}': "
                 f"{', '.join(selection.get('members', []))}", fontsize=9)
    return fig


# --- file-level entry points (one per report script) ----------------------------------------
def markdown_page(markdown: str, title: str) -> str:
    """A self-contained HTML page showing a Markdown text as preformatted text."""
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1>\n<pre>{html.escape(markdown)}"
            "</pre></body></html>\n")


def run_qc_page(*, inputs: Mapping[str, PathLike], outputs: Mapping[str, PathLike]) -> None:
    """The QC summary ``inputs["summary"]`` (Markdown) as the HTML page ``outputs["page"]``."""
    from pathlib import Path

    from ..io import write_text

    write_text(outputs["page"], markdown_page(Path(inputs["summary"]).read_text(), "QC summary"))


def example_rows(n_samples: int, n_examples: int) -> np.ndarray:
    """Evenly spaced row numbers (first and last included) of a stack, at most n_examples."""
    count = min(n_examples, n_samples)
    return np.unique(np.linspace(0, n_samples - 1, num=count).round().astype(int))


def run_render_examples(*, inputs: Mapping[str, PathLike], outputs: Mapping[str, PathLike],
                        n_examples: int, log_mode: str,
                        axes: RenderAxes | Mapping[str, Any], title: str) -> None:
    """A grid ``outputs["grid"]`` of evenly spaced samples of the stack ``inputs["stack"]``
    (ids: ``inputs["ids"]``) on the representation's ``axes`` (or their ``as_dict``)."""
    from ..io import read_csv, save_figure

    ids = read_csv(inputs["ids"])["sample_id"].tolist()
    stack = np.load(inputs["stack"], mmap_mode="r")
    rows = example_rows(len(ids), n_examples)
    fig = render_grid(np.asarray(stack[rows]), [ids[i] for i in rows], log_mode=log_mode,
                      axes=RenderAxes.of(axes), title=title)
    save_figure(outputs["grid"], fig, dpi=110)
    plt.close(fig)


def run_curve_grid(*, inputs: Mapping[str, Sequence[PathLike]],
                   outputs: Mapping[str, PathLike], jobs: Sequence[Sequence[Any]]) -> None:
    """The curve images ``inputs["curves"]`` of the train jobs ``jobs`` ([model, fold], same
    order) tiled into ``outputs["grid"]``."""
    from ..io import save_figure

    fig = curve_grid({tuple(k): plt.imread(p) for k, p in zip(jobs, inputs["curves"])})
    save_figure(outputs["grid"], fig, dpi=110)
    plt.close(fig)


def run_score_report(*, inputs: Mapping[str, PathLike], outputs: Mapping[str, PathLike],
                     baselines: Sequence[str]) -> None:
    """From ``inputs["scores"]``: ``outputs`` ``table`` (CSV), ``page`` (HTML), ``bars`` and
    ``baselines`` (PNG)."""
    from ..io import save_figure, write_csv, write_text

    table = per_label_loss_table(pd.read_csv(inputs["scores"]))
    write_csv(outputs["table"], table.reset_index(), float_format="%.6f")
    write_text(outputs["page"], markdown_free_table(table, "Out-of-fold log loss per label"))
    for path, fig in ((outputs["bars"], per_label_loss_bars(table, baselines)),
                      (outputs["baselines"], baseline_comparison(table, baselines))):
        save_figure(path, fig, dpi=110)
        plt.close(fig)


def markdown_free_table(table: pd.DataFrame, title: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1>\n"
            f"{table.to_html(float_format=lambda v: f'{v:.4f}')}</body></html>\n")


def run_calibration(*, inputs: Mapping[str, PathLike], outputs: Mapping[str, PathLike],
                    data: Mapping[str, Any], labels: Sequence[str], n_bins: int,
                    task: str) -> None:
    """Reliability of the ensemble's OOF logits ``inputs["oof"]``: ``outputs["table"]``
    (CSV) and ``outputs["plot"]`` (PNG)."""
    from ..data.sheet import sample_sheet
    from ..ensemble.tables import label_matrix, read_logit_table
    from ..io import save_figure, write_csv

    oof = read_logit_table(inputs["oof"], labels)
    label_table = sample_sheet(data).attrs["label_table"]
    y = label_matrix(label_table, list(oof["sample_id"]), labels)
    table = reliability_table(y, to_probs(oof[list(labels)].to_numpy(float), task), n_bins)
    write_csv(outputs["table"], table)
    fig = calibration_plot(table)
    save_figure(outputs["plot"], fig, dpi=110)
    plt.close(fig)


def run_member_correlation(*, inputs: Mapping[str, Sequence[PathLike]],
                           outputs: Mapping[str, PathLike], members: Sequence[str],
                           labels: Sequence[str]) -> None:
    """Correlation of the members' OOF logits ``inputs["oof"]`` (``members`` order):
    ``outputs["table"]`` (CSV) and ``outputs["plot"]`` (PNG)."""
    from ..ensemble.tables import read_logit_table
    from ..io import save_figure, write_csv

    corr = member_correlation({m: read_logit_table(p, labels)
                               for m, p in zip(members, inputs["oof"])}, labels)
    write_csv(outputs["table"], corr.reset_index(names="member"), float_format="%.6f")
    fig = correlation_heatmap(corr)
    save_figure(outputs["plot"], fig, dpi=110)
    plt.close(fig)


def run_selection_plot(*, inputs: Mapping[str, PathLike],
                       outputs: Mapping[str, PathLike]) -> None:
    """The selection ``inputs["selection"]`` (selection.json) drawn into ``outputs["plot"]``."""
    from pathlib import Path

    from ..io import save_figure

    fig = selection_path_plot(json.loads(Path(inputs["selection"]).read_text()))
    save_figure(outputs["plot"], fig, dpi=110)
    plt.close(fig)
