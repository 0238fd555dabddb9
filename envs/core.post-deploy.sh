#!/usr/bin/env bash
# Snakemake (--sdm conda) runs this once, inside a new environment made from the .yaml of
# the same name. It installs spectrovision itself from the workflow's checkout, whose path
# the Snakefile exports as SPECTROVISION_ROOT: Snakemake copies the .yaml to
# .snakemake/conda/ before conda reads it, so a path relative to envs/ (pip's `-e ../`)
# would not reach the checkout. Editable, so jobs import the checkout's current code (the
# code versions re-run a rule when it changes); --no-deps, since the .yaml pins every
# dependency at requirements.lock's versions. torch.post-deploy.sh links to this file.
set -euo pipefail
python -m pip install --no-deps --editable \
    "${SPECTROVISION_ROOT:?is not set: run snakemake with the Snakefile of this repository}"
