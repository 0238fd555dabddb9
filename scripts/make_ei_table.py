"""Derive the compact EI spectra table shipped with spectrovision (demo-data generator input).

Source: ../shared/data/ei-spectra/massbank_ei_cc_by.csv (MassBank EI records licensed
CC BY or CC BY-SA). Per record: m/z rounded to integers (intensities summed per integer
m/z), m/z <= 250 kept, peaks below 0.5% of the base peak dropped, intensities scaled to
a maximum of 999. Attribution columns (accession, contributor, license) are kept, and
src/spectrovision/synth/ATTRIBUTION.md is regenerated with per-contributor counts.

    .venv/bin/python scripts/make_ei_table.py [SOURCE_CSV]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "ei-spectra" / "massbank_ei_cc_by.csv"
OUT_DIR = REPO / "src" / "spectrovision" / "synth"
FAMILIES = ["aromatic", "hydrocarbon", "carboxylic_acid", "nitrogen_bearing_compound",
            "chlorine_bearing_compound", "sulfur_bearing_compound", "alcohol",
            "other_oxygen_bearing_compound", "mineral"]
MAX_MZ = 250
MIN_RELATIVE = 0.005
NOMINAL_MASS = {"C": 12, "H": 1, "N": 14, "O": 16, "S": 32, "P": 31, "F": 19, "Cl": 35,
                "Br": 79, "I": 127, "Si": 28, "B": 11, "Se": 80, "Na": 23, "K": 39}


def compact_peaks(peaks: str) -> str:
    """``mz:intensity;...`` -> integer m/z (summed), <= MAX_MZ, >= 0.5% of base, max 999."""
    pairs = [p.split(":") for p in str(peaks).split(";") if ":" in p]
    mz = np.rint(np.array([float(m) for m, _ in pairs])).astype(int)
    inten = np.array([float(i) for _, i in pairs])
    keep = (mz >= 1) & (mz <= MAX_MZ)
    summed = np.bincount(mz[keep], weights=inten[keep], minlength=MAX_MZ + 1)
    if summed.max() <= 0:
        return ""
    scaled = np.rint(summed / summed.max() * 999)
    kept = np.flatnonzero(summed >= MIN_RELATIVE * summed.max())
    return ";".join(f"{m}:{int(scaled[m])}" for m in kept if scaled[m] > 0)


def nominal_mass(formula: str) -> int | None:
    """Nominal molecular mass from a formula (None when an element is unknown)."""
    total = 0
    for element, count in re.findall(r"([A-Z][a-z]?)(\d*)", str(formula)):
        if element not in NOMINAL_MASS:
            return None
        total += NOMINAL_MASS[element] * (int(count) if count else 1)
    return total or None


def build_table(source: Path) -> pd.DataFrame:
    raw = pd.read_csv(source)
    table = pd.DataFrame({
        "accession": raw["accession"], "contributor": raw["contributor"],
        "license": raw["license"], "name": raw["name"],
        "derivatized": raw["derivatized"].astype(int),
    })
    for fam in FAMILIES:
        table[fam] = raw[fam].astype(int)
    table["nominal_mass"] = [nominal_mass(f) for f in raw["formula"]]
    table["peaks"] = [compact_peaks(p) for p in raw["peaks"]]
    table = table[table["peaks"] != ""]
    table["nominal_mass"] = table["nominal_mass"].astype("Int64")
    return table.sort_values("accession").reset_index(drop=True)


def attribution(table: pd.DataFrame) -> str:
    counts = table.groupby(["contributor", "license"]).size().reset_index(name="records")
    rows = "\n".join(f"| {r.contributor} | {r.license} | {r.records} |"
                     for r in counts.itertuples())
    return f"""# Attribution: ei_spectra.csv.gz

`ei_spectra.csv.gz` is derived from {len(table)} electron-ionization mass spectra of the
[MassBank](https://massbank.eu) data repository
([MassBank-data](https://github.com/MassBank/MassBank-data)), only records licensed
**CC BY** (https://creativecommons.org/licenses/by/4.0/) or **CC BY-SA**
(https://creativecommons.org/licenses/by-sa/4.0/). Each row keeps its MassBank
`accession`, `contributor` and `license`; that accession list is the full record of
sources. Under CC BY-SA the derived table is shared under the same licence (CC BY-SA 4.0).

Changes made (scripts/make_ei_table.py): m/z rounded to integers with intensities summed
per integer m/z, m/z above {MAX_MZ} dropped, peaks below {MIN_RELATIVE:.1%} of the base peak
dropped, intensities scaled to a maximum of 999; compound family flags (Mars-2 labels)
derived from formula and SMILES; nominal mass computed from the formula. Spectra are
used only to synthesise demo GC-MS runs.

## Records per contributor and licence
| contributor | license | records |
|---|---|---|
{rows}
"""


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else SOURCE
    table = build_table(source)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT_DIR / "ei_spectra.csv.gz", index=False,
                 compression={"method": "gzip", "mtime": 0})
    (OUT_DIR / "ATTRIBUTION.md").write_text(attribution(table))
    print(f"{len(table)} records -> {OUT_DIR / 'ei_spectra.csv.gz'}")


if __name__ == "__main__":
    main(sys.argv[1:])
