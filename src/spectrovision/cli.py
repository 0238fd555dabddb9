"""Command line: ``spectrovision <command> ...``.

Every subcommand is one :class:`Subcommand` row of :data:`SUBCOMMANDS`: a name, a help
line, a function that adds its arguments and a function that runs it (returning the exit
status). To add a command, write those two functions and append a row.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .provenance.lineage import add_lineage_arguments, run_lineage


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- demo-data ---
DEMO_OUTPUTS = ("metadata.csv", "train_labels.csv", "val_labels.csv", "submission_format.csv",
                "heldout_labels.csv", "run_compounds.csv",
                "train_features", "val_features", "test_features")


def add_demo_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path,
                        help="folder to write the data set into (created; must be empty)")
    parser.add_argument("--n-runs", type=int, default=None,
                        help="number of runs (default 300, the embedded demo; 1584 = Mars-2 "
                             "scale)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--ramp-rate", type=float, nargs=2, metavar=("LO", "HI"),
                        default=None, help="per-run oven ramp rate drawn uniformly in "
                        "[LO, HI] degC/min (default 8 20; e.g. 4 25 for Mars-2-like spread)")
    parser.add_argument("--end-temp", type=float, nargs=2, metavar=("LO", "HI"),
                        default=None, help="per-run oven end temperature drawn uniformly in "
                        "[LO, HI] degC (default: 300 for every run; e.g. 250 380)")
    parser.add_argument("--format", dest="run_format", default="csv",
                        choices=("csv", "andi", "mzml", "jcamp", "mixed"),
                        help="run file format: csv (default; data.layout mars2), or instrument "
                        "files for data.layout instrument: andi (ANDI/AIA netCDF .cdf), mzml, "
                        "jcamp (JCAMP-DX .jdx), mixed (the three in turn); the same runs")
    parser.add_argument("--heldout-compounds", type=float, default=None, metavar="FRACTION",
                        help="hold out this share (0-1) of the library's compounds: they "
                        "appear only in the test runs, the rest only in train and val runs; "
                        "also writes heldout_labels.csv (the test runs' labels, for scoring "
                        "afterwards) and run_compounds.csv (default: off, every run draws "
                        "from every compound)")
    parser.add_argument("--force", action="store_true",
                        help="replace the data set files in a non-empty --out")


def run_demo_data(args: argparse.Namespace) -> int:
    from .synth.demo import DEMO_N_RUNS, RAMP_RATE, generate_demo_dataset, split_sizes_for

    out: Path = args.out
    n_runs = DEMO_N_RUNS if args.n_runs is None else args.n_runs
    if n_runs < 1:
        print(f"error: --n-runs must be at least 1, got {n_runs}", file=sys.stderr)
        return 2
    if args.heldout_compounds is not None and not 0 < args.heldout_compounds < 1:
        print(f"error: --heldout-compounds must lie strictly between 0 and 1, got "
              f"{args.heldout_compounds}", file=sys.stderr)
        return 2
    if not clear_outputs(out, args.force, DEMO_OUTPUTS, "demo"):
        return 2
    ramp = RAMP_RATE if args.ramp_rate is None else tuple(args.ramp_rate)
    end = None if args.end_temp is None else tuple(args.end_temp)
    generate_demo_dataset(out, n_runs=n_runs, seed=args.seed, ramp_rate=ramp, end_temp=end,
                          run_format=args.run_format, heldout_compounds=args.heldout_compounds)
    sizes = split_sizes_for(n_runs)
    layout = "mars2" if args.run_format == "csv" else "instrument"
    print(f"wrote {n_runs} demo GC-MS runs ({sizes['train']} train, {sizes['val']} val, "
          f"{sizes['test']} test) to {out}"
          + ("" if layout == "mars2" else f" as {args.run_format} files (data.layout: {layout})")
          + ("" if args.heldout_compounds is None else
             f"; test runs hold only the {args.heldout_compounds:g} of compounds held out "
             "(their labels: heldout_labels.csv)"))
    return 0


# --- particles-data ---
PARTICLE_OUTPUTS = ("metadata.csv", "train_labels.csv", "submission_format.csv",
                    "heldout_labels.csv", "images")


def add_particles_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path,
                        help="folder to write the data set into (created; must be empty)")
    parser.add_argument("--n-images", type=int, default=300,
                        help="number of particle images (default 300)")
    parser.add_argument("--size", type=int, default=64,
                        help="typical image side in pixels; sides vary from 3/4 to 3/2 of it "
                             "(default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--classes", type=int, default=5, metavar="5|10",
                        help="number of classes (default 5: sphere, fibre, crystal, aggregate, "
                        "flake); 10 adds ellipsoid, rod, plate, chain and grain, each made to be "
                        "confused with one of the five, and makes the metadata weak")
    parser.add_argument("--test-fraction", type=float, default=None, metavar="F",
                        help="share (0-1) of each class in the unlabelled test split "
                        "(default 0.2)")
    parser.add_argument("--heldout-labels", action="store_true",
                        help="also write heldout_labels.csv (the test images' classes, one-hot, "
                        "for scoring a run's test predictions afterwards)")
    parser.add_argument("--force", action="store_true",
                        help="replace the data set files in a non-empty --out")


def run_particles_data(args: argparse.Namespace) -> int:
    from .synth.particles import N_CLASSES, TEST_FRACTION, classes_for, generate_particle_dataset

    out: Path = args.out
    if args.n_images < 1 or args.size < 16:
        print(f"error: --n-images must be at least 1 and --size at least 16, got "
              f"{args.n_images} and {args.size}", file=sys.stderr)
        return 2
    if args.classes not in N_CLASSES:
        print(f"error: --classes must be 5 or 10, got {args.classes}: 5 is the default set, "
              "10 adds five confusable classes", file=sys.stderr)
        return 2
    fraction = TEST_FRACTION if args.test_fraction is None else args.test_fraction
    if not 0 < fraction < 1:
        print(f"error: --test-fraction must lie strictly between 0 and 1, got {fraction}",
              file=sys.stderr)
        return 2
    if not clear_outputs(out, args.force, PARTICLE_OUTPUTS, "particle"):
        return 2
    generate_particle_dataset(out, n_images=args.n_images, seed=args.seed, size=args.size,
                              test_fraction=fraction, n_classes=args.classes,
                              heldout_labels=args.heldout_labels)
    names = classes_for(args.classes)
    print(f"wrote {args.n_images} particle images ({len(names)} classes: "
          f"{', '.join(names)}) with metadata to {out}"
          + ("; the test images' classes: heldout_labels.csv" if args.heldout_labels else ""))
    return 0


def clear_outputs(out: Path, force: bool, names: Sequence[str], what: str) -> bool:
    """True when ``out`` is empty or absent, or (``force``) once the named files of a previous
    run are removed; False (an error printed) for a non-empty ``out`` without ``force``."""
    if not (out.exists() and any(out.iterdir())):
        return True
    if not force:
        print(f"error: {out} is not empty; choose an empty folder or add --force to "
              f"replace the {what} data set files in it", file=sys.stderr)
        return False
    remove_outputs(out, names)
    return True


def remove_outputs(out: Path, names: Sequence[str]) -> None:
    """Remove what a previous data-set command wrote (only the named files and folders)."""
    for name in names:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


# --- config-doc ---
def add_config_doc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("config") / "README.md",
                        help="Markdown file to write (default config/README.md)")


def run_config_doc(args: argparse.Namespace) -> int:
    from .config.doc import schema_markdown
    from .io import write_text

    write_text(args.out, schema_markdown())
    print(f"wrote {args.out}")
    return 0


# --- status ---
def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", type=Path, default=Path("config/config.yaml"),
                        help="the run's config (default config/config.yaml)")
    parser.add_argument("--directory", type=Path, default=Path("."),
                        help="where Snakemake runs (a relative results: is taken from "
                        "here; default .)")


def run_status(args: argparse.Namespace) -> int:
    from .learn.progress import format_status, status_from_config

    if not args.configfile.is_file():
        print(f"error: {args.configfile}: no such config file; pass --configfile",
              file=sys.stderr)
        return 2
    results, jobs = status_from_config(args.configfile, args.directory)
    print(f"results: {results}")
    print(format_status(jobs))
    return 0


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("demo-data", "generate the demo GC-MS data set (Mars-2 layout, or instrument "
               "files with --format)",
               add_demo_data_arguments, run_demo_data),
    Subcommand("particles-data", "generate the demo particle image data set (layout images, "
               "5 or 10 classes, numeric metadata)", add_particles_data_arguments, run_particles_data),
    Subcommand("config-doc", "write config/README.md (every key) from the config schema",
               add_config_doc_arguments, run_config_doc),
    Subcommand("lineage", "show what an artefact was made from (its provenance, back to "
               "the raw files)", add_lineage_arguments, run_lineage),
    Subcommand("status", "where a run stands: per model x fold done / running / "
               "interrupted / waiting, and the time left", add_status_arguments, run_status),
]


def build_parser(subcommands: Sequence[Subcommand] = SUBCOMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectrovision",
        description="Mass-spectrometry runs as images, classified by timm CNN ensembles.")
    parser.add_argument("--version", action="version", version=f"spectrovision {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for sub in subcommands:
        sub_parser = commands.add_parser(sub.name, help=sub.help, description=sub.help)
        sub.add_arguments(sub_parser)
        sub_parser.set_defaults(run=sub.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
