"""Apply mode: the members of a trained run applied to a new data set, never retrained.

``manifest`` writes what a trained run holds (trained_manifest.json) and checks an apply
run's config against it; ``predict`` predicts the new samples with each selected member
and combines them with the trained ensemble's weights.
"""

from .._exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "manifest": ["read_manifest", "applied_config", "applied_members", "run_trained_manifest"],
    "predict": ["run_apply_model", "run_apply_member", "run_apply_gather",
                "run_apply_ensemble"],
})
