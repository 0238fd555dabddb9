"""Report: figures and tables for the Snakemake report (one ``run_*`` per report rule)."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "figures": ["render_grid", "intensity_norm", "per_label_loss_table", "reliability_table",
                "member_correlation", "selection_path_plot", "run_qc_page",
                "run_render_examples", "run_curve_grid", "run_score_report",
                "run_calibration", "run_member_correlation", "run_selection_plot"],
})
