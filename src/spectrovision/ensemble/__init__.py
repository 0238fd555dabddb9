"""Ensemble: member tables, gather, combine, selection, the ensemble step, members
(baselines, tabular) and the submission."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "tables": ["read_logit_table", "label_matrix"],
    "gather": ["gather_member", "run_gather"],
    "combine": ["combine_logits"],
    "selection": ["score_members", "greedy_select", "bagged_select", "fit_label_weights"],
    "build": ["EnsembleSettings", "EnsembleResult", "build_ensemble", "run_ensemble"],
    "members": ["Member", "Renders", "cross_fit", "predict_fitted", "load_stack_features"],
    "baselines": ["Baseline", "BASELINES", "register_baseline", "baseline_class", "baseline_settings",
                  "baseline_representation", "run_baseline"],
    "tabular": ["TABULAR_MEMBERS", "TabularSettings", "GBMSettings", "resolve_tabular", "fit_tabular",
                "run_tabular"],
    "submission": ["build_submission", "run_submission"],
})
