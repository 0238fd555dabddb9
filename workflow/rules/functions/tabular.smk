# Input functions and helpers of the tabular stage's rules (workflow/rules/tabular.smk).
from spectrovision.config.typed import as_dict

TABULAR_PATTERN = "|".join(map(re.escape, TABULAR)) or "(?!)"


def tabular_settings(name):
    """A tabular member's resolved settings (representation and seed filled in), as a
    plain dict for params."""
    return as_dict(TABULAR_SETTINGS[name])


def get_tabular_inputs(wildcards):
    """Folds, sheet files and the stacked renders (every split) of the member's representation."""
    return fitted_member_inputs(TABULAR_SETTINGS[wildcards.tabular].representation)
