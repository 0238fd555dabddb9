import os

from snakemake.utils import min_version

min_version("8.20")

# --sdm conda: each environment's post-deploy script (envs/*.post-deploy.sh) installs
# spectrovision from this checkout, found through this variable (set here, not read:
# no envvars directive, which asserts a variable the user must export)
os.environ.update(SPECTROVISION_ROOT=str(workflow.basedir))


# config/config.yaml is the default run; a config given with --configfile replaces it
# (instead of being merged into it, which would mix the default's models into yours).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/folds.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/tabular.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/analysis.smk"


# apply mode (trained_results set): the trained run's members predict this data set
if TRAINED:

    include: "workflow/rules/apply.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
