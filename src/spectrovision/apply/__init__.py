"""Apply mode: the members of a trained run applied to a new data set, never retrained.

``manifest`` writes what a trained run holds (trained_manifest.json) and checks an apply
run's config against it; ``model`` predicts the new samples with a trained model's fold
(the one apply step that needs torch); ``predict`` with each selected baseline or tabular
member, and combines the members with the trained ensemble's weights.
"""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "manifest": ["read_manifest", "applied_config", "applied_members", "run_trained_manifest"],
    "model": ["run_apply_model"],
    "predict": ["run_apply_member", "run_apply_gather", "run_apply_ensemble"],
})
