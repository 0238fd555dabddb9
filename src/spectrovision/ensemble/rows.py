"""The ensemble's own rows in ``scores.csv`` (beside one row per member): the ensemble
and its nested estimate. No member may take these names; the workflow passes them to the
config check (:func:`spectrovision.config.checks.check_config`), since config, below the
ensemble in the data flow, does not import it."""

from __future__ import annotations

ENSEMBLE_ROWS = ("ensemble", "ensemble_nested")
