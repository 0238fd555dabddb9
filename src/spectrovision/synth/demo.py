"""Demo data: realistic synthetic GC-MS runs in the NASA Mars Spectrometry 2 layout.

Each run is a temperature-programmed GC-MS acquisition: a few (1-5) compounds, drawn from
the packaged table of real MassBank EI spectra (``synth/ei_spectra.csv.gz``, see
``synth/ATTRIBUTION.md``), elute as exponentially-modified Gaussian peaks whose retention
depends on the compound's mass and on the run's ramp rate; every scan is the sum of each
compound's spectrum times its peak height, plus column bleed (siloxane ions rising with
temperature), air/water background with drift, helium carrier gas at m/z 4, derivatization
reagent (derivatized runs), noise spikes and Poisson counting noise, above a detector
threshold. Some runs hold only inorganic gases released by minerals (CO2, SO2, H2O, HCl).
Labels are the union of the families of what a run contains.

Entry point: :func:`generate_demo_dataset`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import exponnorm

from ..io import atomic_path, write_csv

LABELS: tuple[str, ...] = (
    "aromatic", "hydrocarbon", "carboxylic_acid", "nitrogen_bearing_compound",
    "chlorine_bearing_compound", "sulfur_bearing_compound", "alcohol",
    "other_oxygen_bearing_compound", "mineral",
)
ORGANIC_LABELS: tuple[str, ...] = LABELS[:-1]
MARS2_SPLITS: dict[str, int] = {"train": 809, "val": 312, "test": 463}
MAX_MZ = 300  # highest m/z scanned (the packaged spectra stop at 250)
MIN_MZ = 10
HELIUM_MZ = 4
T_START = 40.0  # deg C, oven start
T_END = 300.0  # deg C, oven end (the default; ``end_temp`` draws one per run)
RAMP_RATE = (8.0, 20.0)  # deg C / min, the default range of the per-run ramp rate
# runs in the embedded demo data set (make demo): 300, so that ~210 labelled runs (~140 per
# training fold) separate the CNNs from the linear yardstick by more than their seed spread
# (200 runs: the 2-D CNN 0.392-0.433 over seeds, logistic_l2 0.407; docs/benchmarks.md)
DEMO_N_RUNS = 300
BLEED_EFOLD = 55.0  # deg C per e-fold of the column bleed (it rises as exp((T - T_START) / 55))

# Simple synthetic EI spectra (relative intensity, base 999) of gases released by minerals.
MINERAL_GASES: dict[str, dict[int, float]] = {
    "CO2": {44: 999, 28: 98, 16: 96, 12: 87, 45: 12, 46: 4},
    "SO2": {64: 999, 48: 490, 32: 104, 66: 49, 16: 52, 65: 9},
    "H2O": {18: 999, 17: 212, 16: 9, 19: 5},
    "HCl": {36: 999, 38: 325, 35: 170, 37: 55},
}
SILOXANE_BLEED: dict[int, float] = {207: 999, 208: 200, 209: 90, 281: 450, 282: 110, 73: 300,
                                    267: 60, 191: 40}
DERIVATIZATION_REAGENT: dict[int, float] = {73: 999, 75: 340, 147: 260, 45: 150, 59: 120,
                                            131: 80, 221: 55}
AIR_BACKGROUND: dict[int, tuple[float, float]] = {18: (400, 1500), 28: (800, 3000),
                                                  32: (200, 800), 40: (40, 150), 44: (150, 600)}
COMPOUND_COUNT_P = np.array([0.35, 0.30, 0.17, 0.10, 0.08])  # 1..5 compounds per organic run
HELDOUT_STREAM = 0x48454C44  # seeds the held-out compound draw, apart from every run's stream
ISOTOPE_LABEL = re.compile(r"-\[[^\]]*13c[^\]]*\]$")  # '-[1,2,3,4-13C4]'
STEREO_PREFIX = re.compile(r"^(?:dl|d|l|rac|cis|trans|\([+\-±]\)|\([0-9]*[rs](?:,[0-9]*[rs])*\))-")


@dataclass(frozen=True)
class SpectraLibrary:
    """The packaged EI spectra as a dense (records x m/z 0..MAX_MZ) matrix, max 999 each."""

    spectra: np.ndarray
    families: np.ndarray  # (records, 8) 0/1 in ORGANIC_LABELS order
    derivatized: np.ndarray  # (records,) bool
    elution_mass: np.ndarray  # (records,) mass proxy that sets retention
    accession: np.ndarray
    name: np.ndarray  # the compound's name (a record's derivatized form keeps it)


def compound_key(name: str) -> str:
    """The compound a spectrum record is of, for holding compounds out: its name in lower
    case without a 13C label suffix ('Malic acid-[1-13C]') or leading stereo descriptors
    ('D-', 'L-', 'DL-', '(+)-', '(2S)-', 'trans-'), so that labelled, derivatized and
    stereo forms of one compound (the same spectrum, or nearly) count as one."""
    key = ISOTOPE_LABEL.sub("", name.strip().lower())
    while (stripped := STEREO_PREFIX.sub("", key, count=1)) != key:
        key = stripped
    return key


@lru_cache(maxsize=1)
def load_spectra_library() -> SpectraLibrary:
    """Read ``synth/ei_spectra.csv.gz`` shipped with the package."""
    with resources.files("spectrovision").joinpath("synth/ei_spectra.csv.gz").open("rb") as fh:
        table = pd.read_csv(fh, compression="gzip")
    spectra = np.zeros((len(table), MAX_MZ + 1), dtype=np.float32)
    for row, peaks in enumerate(table["peaks"]):
        for pair in peaks.split(";"):
            mz, intensity = pair.split(":")
            spectra[row, int(mz)] = float(intensity)
    derivatized = table["derivatized"].to_numpy().astype(bool)
    peak_mass = np.array([max(int(p.split(":")[0]) for p in s.split(";")) for s in table["peaks"]])
    nominal = table["nominal_mass"].fillna(pd.Series(peak_mass, index=table.index)).to_numpy()
    # A TMS group adds 72 u and raises the boiling point: derivatized records elute later.
    elution_mass = nominal.astype(float) + 72.0 * derivatized
    return SpectraLibrary(spectra=spectra,
                          families=table[list(ORGANIC_LABELS)].to_numpy().astype(np.int8),
                          derivatized=derivatized, elution_mass=elution_mass,
                          accession=table["accession"].to_numpy(),
                          name=table["name"].to_numpy())


def heldout_records(library: SpectraLibrary, fraction: float, seed: int) -> np.ndarray:
    """Which records (bool per record) belong to the held-out compounds: ``fraction`` of the
    library's compounds (:func:`compound_key`; all records of a compound go together), drawn
    from the seed's own stream, never a run's."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"heldout_compounds must lie strictly between 0 and 1, got {fraction}")
    keys = np.array([compound_key(str(n)) for n in library.name])
    unique = np.unique(keys)
    rng = np.random.default_rng([HELDOUT_STREAM, seed])
    held = rng.choice(unique, size=max(1, round(fraction * len(unique))), replace=False)
    return np.isin(keys, held)


def split_sizes_for(n_runs: int) -> dict[str, int]:
    """Mars-2's split sizes (809/312/463 of 1584) scaled to ``n_runs``."""
    total = sum(MARS2_SPLITS.values())
    train = round(n_runs * MARS2_SPLITS["train"] / total)
    val = round(n_runs * MARS2_SPLITS["val"] / total)
    return {"train": train, "val": val, "test": n_runs - train - val}


@dataclass(frozen=True)
class RunPlan:
    """What one run contains and how it was acquired."""

    derivatized: bool
    compounds: tuple[int, ...]  # indices into the spectra library
    gases: tuple[str, ...]  # mineral gases
    ramp_rate: float  # deg C / min
    hold: float  # min at T_START before the ramp
    n_scans: int
    end_temp: float = T_END  # deg C where the ramp stops (then a 2 min hold)


def plan_run(rng: np.random.Generator, library: SpectraLibrary, n_scans: tuple[int, int],
             derivatized_fraction: float = 1 / 3, mineral_only_fraction: float = 0.12,
             mineral_extra_fraction: float = 0.12,
             ramp_rate: tuple[float, float] = RAMP_RATE,
             end_temp: tuple[float, float] | None = None,
             allowed: np.ndarray | None = None) -> RunPlan:
    """Draw a run: derivatization, compounds (family-balanced), mineral gases, ramp.

    The ramp rate is uniform in ``ramp_rate`` (deg C / min); ``end_temp`` None keeps the
    oven's end at ``T_END``, a ``(lo, hi)`` draws it uniformly per run (one more draw from
    ``rng``, after all the others, so None leaves every run as it was). ``allowed`` (bool
    per library record; None = all) limits the compounds to those records."""
    derivatized = bool(rng.random() < derivatized_fraction)
    mineral_only = bool(rng.random() < mineral_only_fraction)
    compounds: tuple[int, ...] = ()
    if not mineral_only:
        n = int(rng.choice(len(COMPOUND_COUNT_P), p=COMPOUND_COUNT_P)) + 1
        compounds = tuple(pick_compound(rng, library, derivatized, allowed) for _ in range(n))
    gases: tuple[str, ...] = ()
    if mineral_only or rng.random() < mineral_extra_fraction:
        k = int(rng.integers(1, 4))
        gases = tuple(sorted(rng.choice(list(MINERAL_GASES), size=k, replace=False)))
    rate = float(rng.uniform(ramp_rate[0], ramp_rate[1]))
    hold = float(rng.uniform(1.0, 3.0))
    scans = int(rng.integers(n_scans[0], n_scans[1] + 1))
    end = T_END if end_temp is None else float(rng.uniform(end_temp[0], end_temp[1]))
    return RunPlan(derivatized=derivatized, compounds=compounds, gases=gases, ramp_rate=rate,
                   hold=hold, n_scans=scans, end_temp=end)


def pick_compound(rng: np.random.Generator, library: SpectraLibrary, derivatized: bool,
                  allowed: np.ndarray | None = None) -> int:
    """A record of a uniformly chosen family (among those with >= 3 records in the run's
    derivatization pool, within ``allowed`` records when given), so rare families are not
    drowned by common ones."""
    pool = library.derivatized == derivatized
    if allowed is not None:
        pool &= allowed
    counts = library.families[pool].sum(axis=0)
    family = int(rng.choice(np.flatnonzero(counts >= 3)))
    candidates = np.flatnonzero(pool & (library.families[:, family] == 1))
    return int(rng.choice(candidates))


def run_labels(plan: RunPlan, library: SpectraLibrary) -> dict[str, int]:
    """Union of the families of the run's compounds; mineral when a mineral gas is present."""
    fams = (library.families[list(plan.compounds)].max(axis=0) if plan.compounds
            else np.zeros(len(ORGANIC_LABELS), dtype=np.int8))
    labels = {name: int(v) for name, v in zip(ORGANIC_LABELS, fams)}
    labels["mineral"] = int(bool(plan.gases))
    return labels


def oven_temperature(time: np.ndarray, plan: RunPlan) -> np.ndarray:
    """Temperature program: hold at T_START, linear ramp, hold at the run's end temperature."""
    return np.clip(T_START + (time - plan.hold) * plan.ramp_rate, T_START, plan.end_temp)


def run_duration(plan: RunPlan) -> float:
    return plan.hold + (plan.end_temp - T_START) / plan.ramp_rate + 2.0


def elution_time(elution_mass: float, plan: RunPlan, rng: np.random.Generator) -> float:
    """Retention time: the compound elutes near a temperature rising with its mass (at
    the latest 5 deg C below the run's end temperature), so a slower ramp elutes it later."""
    temp = np.clip(45.0 + 0.8 * elution_mass + rng.normal(0.0, 8.0), 50.0, plan.end_temp - 5.0)
    return plan.hold + (temp - T_START) / plan.ramp_rate


def peak_profile(time: np.ndarray, centre: float, sigma: float, tau: float) -> np.ndarray:
    """Exponentially-modified Gaussian elution profile with apex height 1."""
    profile = exponnorm.pdf(time, tau / sigma, loc=centre, scale=sigma)
    top = profile.max()
    return profile / top if top > 0 else profile


def spectrum_vector(peaks: dict[int, float]) -> np.ndarray:
    vec = np.zeros(MAX_MZ + 1, dtype=np.float64)
    for mz, value in peaks.items():
        vec[mz] = value
    return vec


def expected_counts(plan: RunPlan, library: SpectraLibrary, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Scan times (min) and the expected counts matrix (scans x m/z 0..MAX_MZ)."""
    duration = run_duration(plan)
    dt = duration / plan.n_scans
    time = (np.arange(plan.n_scans) + rng.uniform(0.2, 1.0)) * dt
    frac = time / duration
    counts = np.zeros((plan.n_scans, MAX_MZ + 1))
    for idx in plan.compounds:
        centre = elution_time(float(library.elution_mass[idx]), plan, rng)
        sigma = dt * rng.uniform(1.2, 2.5)
        height = 10 ** rng.uniform(4.3, 5.7) / 999.0
        profile = peak_profile(time, centre, sigma, sigma * rng.uniform(0.2, 1.5))
        counts += height * np.outer(profile, library.spectra[idx])
    for gas in plan.gases:
        centre = rng.uniform(0.3, 0.3 + 0.25 * duration)
        sigma = dt * rng.uniform(3.0, 8.0)
        profile = peak_profile(time, centre, sigma, sigma * rng.uniform(1.0, 4.0))
        height = 10 ** rng.uniform(4.5, 5.8) / 999.0
        counts += height * np.outer(profile, spectrum_vector(MINERAL_GASES[gas]))
    if plan.derivatized:
        profile = peak_profile(time, rng.uniform(0.4, 1.5), dt * 2.0, dt * 6.0)
        counts += 10 ** rng.uniform(4.5, 5.5) / 999.0 * np.outer(
            profile, spectrum_vector(DERIVATIZATION_REAGENT))
    temp = oven_temperature(time, plan)
    bleed = rng.uniform(0.02, 0.08) * np.exp((temp - T_START) / BLEED_EFOLD)
    counts += np.outer(bleed, spectrum_vector(SILOXANE_BLEED))
    drift = 1.0 + rng.uniform(-0.3, 0.3) * frac + 0.1 * np.sin(2 * np.pi * frac * rng.uniform(0.5, 2))
    for mz, (low, high) in AIR_BACKGROUND.items():
        counts[:, mz] += rng.uniform(low, high) * drift
    counts[:, HELIUM_MZ] = rng.uniform(3e5, 1e6) * (1.0 + 0.05 * drift)
    return time, counts


@dataclass(frozen=True)
class Acquisition:
    """One acquired run as scans: each point's scan, nominal m/z and measured (fractional)
    m/z, its integer count, the scan start times (min) and the scan interval ``dt``."""

    scan_time: np.ndarray
    scan: np.ndarray
    mass: np.ndarray
    mz: np.ndarray
    intensity: np.ndarray
    dt: float


def acquire_scans(plan: RunPlan, library: SpectraLibrary, rng: np.random.Generator,
                  threshold: int = 20) -> Acquisition:
    """One run's counts above threshold, with a per-run m/z calibration offset and noise."""
    time, expected = expected_counts(plan, library, rng)
    counts = rng.poisson(expected).astype(np.int64)
    n_spikes = rng.poisson(4.0, size=len(time))
    scan_of_spike = np.repeat(np.arange(len(time)), n_spikes)
    mass_of_spike = rng.integers(MIN_MZ, MAX_MZ + 1, size=len(scan_of_spike))
    counts[scan_of_spike, mass_of_spike] += rng.exponential(80.0, len(scan_of_spike)).astype(np.int64)
    counts[:, 5:MIN_MZ] = 0
    counts[:, :HELIUM_MZ] = 0
    scan, mass = np.nonzero(counts >= threshold)
    dt = time[1] - time[0] if len(time) > 1 else 1.0
    offset = rng.uniform(-0.12, 0.12)
    mz = mass + offset + rng.normal(0.0, 0.02, len(mass))
    return Acquisition(time, scan, mass, mz, counts[scan, mass], dt)


def acquire(plan: RunPlan, library: SpectraLibrary, rng: np.random.Generator,
            threshold: int = 20) -> pd.DataFrame:
    """One run as the instrument writes it: ``time,mass,intensity`` rows above threshold,
    time in minutes (each mass read slightly later within a scan), fractional m/z with a
    per-run calibration offset, integer counts."""
    run = acquire_scans(plan, library, rng, threshold)
    return pd.DataFrame({
        "time": run.scan_time[run.scan] + 0.9 * run.dt * run.mass / (MAX_MZ + 1),
        "mass": run.mz,
        "intensity": run.intensity,
    })


RUN_CSV_ROW = "%.4f,%.2f,%d"  # time, mass, intensity (a float, truncated as np.savetxt would)


def run_csv_bytes(run: pd.DataFrame) -> bytes:
    """The run file's bytes (fixed formatting, so the same run always hashes the same):
    the bytes ``np.savetxt`` writes with these formats, 3-4x faster."""
    columns = (np.asarray(run[c], dtype=np.float64).tolist()
               for c in ("time", "mass", "intensity"))
    rows = "\n".join(map(RUN_CSV_ROW.__mod__, zip(*columns)))
    return ("time,mass,intensity\n" + rows + ("\n" if rows else "")).encode()


RUN_FORMATS = ("csv", "andi", "mzml", "jcamp", "mixed")


def run_file(run_format: str, index: int, plan: RunPlan, library: SpectraLibrary,
             rng: np.random.Generator, title: str) -> tuple[bytes, str]:
    """A run's file bytes and extension in ``run_format`` (``mixed``: andi, mzml and jcamp
    in turn by ``index``). Instrument formats hold the same points as the CSV, at the scan
    start time (the CSV adds each m/z's offset within the scan), m/z to 0.01 as the CSV."""
    if run_format == "csv":
        return run_csv_bytes(acquire(plan, library, rng)), ".csv"
    from ..data.instrument import Scans
    from .instrument_files import WRITERS

    fmt = ("andi", "mzml", "jcamp")[index % 3] if run_format == "mixed" else run_format
    if fmt not in WRITERS:
        raise ValueError(f"run format {run_format!r} is not one of {RUN_FORMATS}")
    run = acquire_scans(plan, library, rng)
    offsets = np.searchsorted(run.scan, np.arange(len(run.scan_time) + 1))
    scans = Scans(fmt, run.scan_time, offsets, np.round(run.mz, 2),
                  run.intensity.astype(np.float64), {})
    writer, suffix = WRITERS[fmt]
    return writer(scans, title), suffix


def write_run(path: Path, data: bytes) -> str:
    """Write a run file atomically; return its md5."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.md5(data).hexdigest()


def sample_splits(n_runs: int, split_sizes: dict[str, int] | None) -> list[str]:
    if n_runs < 1:
        raise ValueError(f"n_runs must be at least 1, got {n_runs}")
    sizes = split_sizes or split_sizes_for(n_runs)
    if sum(sizes.values()) != n_runs:
        raise ValueError(f"split_sizes {sizes} add up to {sum(sizes.values())}, not n_runs={n_runs}")
    unknown = set(sizes) - set(MARS2_SPLITS)
    if unknown:
        raise ValueError(f"split_sizes has unknown splits {sorted(unknown)}; use train/val/test")
    return [split for split in MARS2_SPLITS for _ in range(sizes.get(split, 0))]


def generate_demo_dataset(out_dir: str | Path, n_runs: int = DEMO_N_RUNS, seed: int = 0,
                          split_sizes: dict[str, int] | None = None,
                          n_scans: tuple[int, int] = (240, 360),
                          derivatized_fraction: float = 1 / 3,
                          ramp_rate: tuple[float, float] = RAMP_RATE,
                          end_temp: tuple[float, float] | None = None,
                          run_format: str = "csv",
                          heldout_compounds: float | None = None) -> Path:
    """Write a Mars-2-layout data set of ``n_runs`` synthetic GC-MS runs into ``out_dir``.

    Files: ``metadata.csv`` (sample_id,split,derivatized,features_path,features_md5_hash),
    ``train_labels.csv`` and ``val_labels.csv`` (sample_id + the 9 Mars-2 labels),
    ``submission_format.csv`` (val + test rows, 0.5 each) and one
    ``{split}_features/{sample_id}.csv`` (``time,mass,intensity``) per run.
    ``split_sizes`` defaults to Mars-2's 809/312/463 scaled to ``n_runs``. Deterministic
    for a seed (each run draws from its own seeded stream). Returns ``out_dir``.

    The oven program (the Mars-2 difficulty: retention times stretch with it): each run's
    ramp rate is uniform in ``ramp_rate`` (deg C / min, default 8-20) and its end
    temperature uniform in ``end_temp`` (deg C; None = ``T_END`` for every run, the
    default). A compound elutes near a temperature set by its mass, so a slower ramp
    elutes it later; the column bleed follows the oven temperature, whatever the program.
    The defaults write exactly the files they always have.

    ``run_format`` (:data:`RUN_FORMATS`): ``csv`` (the Mars-2 layout), or instrument files
    for data.layout ``instrument``: ``andi`` (``.cdf``), ``mzml`` (``.mzML``), ``jcamp``
    (``.jdx``) or ``mixed`` (the three in turn); the same runs, plans and labels as ``csv``.

    ``heldout_compounds`` (a fraction in (0, 1); None = off, the default): that share of the
    library's compounds (:func:`heldout_records`) appears only in the test split's runs and
    the others only in the train and val runs, so the test runs hold compounds that no
    labelled run has (minerals are shared). Two more files then: ``heldout_labels.csv`` (the
    test runs' labels, which a run must not read: score its test predictions with them) and
    ``run_compounds.csv`` (sample_id, split, compounds: the ``compound_key`` names of each
    run's compounds joined by ``;``).
    """
    if run_format not in RUN_FORMATS:
        raise ValueError(f"run_format {run_format!r} is not one of {RUN_FORMATS}")
    out = Path(out_dir)
    splits = sample_splits(n_runs, split_sizes)
    library = load_spectra_library()
    held = None if heldout_compounds is None else heldout_records(library, heldout_compounds,
                                                                   seed)
    meta_rows: list[dict[str, object]] = []
    label_rows: list[dict[str, object]] = []
    compound_rows: list[dict[str, object]] = []
    for i, split in enumerate(splits):
        rng = np.random.default_rng([seed, i])
        sample_id = f"S{i:04d}"
        allowed = None if held is None else (held if split == "test" else ~held)
        plan = plan_run(rng, library, n_scans, derivatized_fraction,
                        ramp_rate=ramp_rate, end_temp=end_temp, allowed=allowed)
        data, suffix = run_file(run_format, i, plan, library, rng, sample_id)
        rel_path = f"{split}_features/{sample_id}{suffix}"
        md5 = write_run(out / rel_path, data)
        meta_rows.append({"sample_id": sample_id, "split": split,
                          "derivatized": 1 if plan.derivatized else None,
                          "features_path": rel_path, "features_md5_hash": md5})
        label_rows.append({"sample_id": sample_id, "split": split, **run_labels(plan, library)})
        if held is not None:
            compound_rows.append({"sample_id": sample_id, "split": split, "compounds": ";".join(
                compound_key(str(library.name[c])) for c in plan.compounds)})
    labels = pd.DataFrame(label_rows)
    write_tables(out, pd.DataFrame(meta_rows), labels)
    if held is not None:
        write_csv(out / "heldout_labels.csv",
                  labels.loc[labels["split"] == "test", ["sample_id", *LABELS]])
        write_csv(out / "run_compounds.csv", pd.DataFrame(compound_rows))
    return out


def write_tables(out: Path, meta: pd.DataFrame, labels: pd.DataFrame) -> None:
    """metadata.csv, train/val labels and submission_format.csv."""
    meta["derivatized"] = meta["derivatized"].astype("Int64")
    write_csv(out / "metadata.csv", meta)
    cols = ["sample_id", *LABELS]
    write_csv(out / "train_labels.csv", labels.loc[labels["split"] == "train", cols])
    write_csv(out / "val_labels.csv", labels.loc[labels["split"] == "val", cols])
    template = labels.loc[labels["split"].isin(["val", "test"]), ["sample_id"]].copy()
    for name in LABELS:
        template[name] = 0.5
    write_csv(out / "submission_format.csv", template)
