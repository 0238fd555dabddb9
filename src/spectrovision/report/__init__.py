"""Report: figures and tables for the Snakemake report."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "figures": ['render_grid', 'intensity_norm', 'curve_grid', 'per_label_loss_table', 'member_kind', 'per_label_loss_bars', 'baseline_comparison', 'reliability_table', 'expected_calibration_error', 'calibration_plot', 'member_correlation', 'correlation_heatmap', 'selection_path_plot', 'markdown_page', 'run_qc_page', 'example_rows', 'run_render_examples', 'run_curve_grid', 'run_score_report', 'markdown_free_table', 'run_calibration', 'run_member_correlation', 'run_selection_plot'],
})
