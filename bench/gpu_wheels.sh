#!/usr/bin/env bash
# Wheels that bench/gpu_check.sh needs on the lent GPU machine (Python 3.12, x86-64, no
# registry there): the packages spectrovision imports that its image lacks, at the versions
# of requirements.lock. Run here, in the repository root, before the device call; the
# call then names .whl in carry. (.whl/ is git-ignored.)
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -i "^$1==" requirements.lock | head -1; }
mkdir -p .whl
for name in jsonschema jsonschema-specifications referencing rpds-py; do
  spec=$(pin "$name"); spec=${spec:-$name}
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$spec"
done
ls -la .whl
