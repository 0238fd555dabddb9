"""Ensemble: member logit tables, gathering, greedy selection, logit averaging, baselines, tabular members, the submission."""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "baselines": ['cross_fit', 'prior_fit_predict', 'conditional_prior_fit_predict', 'group_column', 'coarse_time_features', 'load_stack_features', 'l1_penalty', 'logistic_fit_predict', 'baseline_fit_predict', 'run_baseline'],
    "combine": ['read_logit_table', 'check_logit_table', 'label_matrix', 'mean_clipped_logit', 'gather_oof', 'gather_member', 'combine_logits', 'normalise_weights', 'ensemble_loss', 'score_members', 'score_members_multiclass', 'greedy_select', 'fit_label_weights', 'EnsembleResult', 'aligned_oof', 'choose_members', 'build_ensemble', 'run_gather', 'run_ensemble'],
    "submission": ['probabilities', 'read_submission_format', 'unlabelled_format', 'build_submission', 'run_submission'],
    "tabular": ['resolve_tabular', 'GBMSettings', 'Features', 'image_feature_names', 'metadata_features', 'build_features', 'fit_booster', 'contributions', 'ShapAccumulator', 'gbm_fit_predict', 'gbm_multiclass_fit_predict', 'TabularResult', 'importance_table', 'fit_tabular', 'shap_summary_plot', 'run_tabular'],
})
