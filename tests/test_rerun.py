"""Re-run precision: after one complete tiny run, an edit re-runs exactly what it invalidated.

Counted on Snakemake's dry-run job list (rule + wildcards of every planned job). The
workflow (Snakefile, workflow/, src/, envs/) is copied into a temporary folder so that the
code-change case can edit the library without touching the repository. The complete run
happens once per module.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import datetime
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest
import yaml

from spectrovision.data.sheet import sample_shards
from spectrovision.learn.cost import TIMM_EPOCH_FACTOR
from spectrovision.provenance.lineage import build_lineage
from support import (TINY_REPRESENTATION, dry_run, parse_dry_run, run_snakemake,
                     tiny_workflow_config)

REPO = Path(__file__).resolve().parents[1]
NEEDED_RULES = {"ingest.smk": "ingest", "train.smk": "train", "predict.smk": "predict",
                "ensemble.smk": "ensemble"}
REPORT_ON_RESULTS = {"report_training_curves", "report_scores", "report_calibration",
                     "report_correlation", "report_selection"}
ENSEMBLE_ON = {"ensemble", "submission", "trained_manifest", "all"}
N_FOLDS = 2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # setup: the whole tiny run


def rules_in(smk: str) -> set[str]:
    path = REPO / "workflow" / "rules" / smk
    return set(re.findall(r"^rule (\w+):", path.read_text(), re.M)) if path.exists() else set()


def missing_stages() -> list[str]:
    """Stages whose rule file has no rule containing the stage name yet."""
    return [f"{smk} has no '{stem}' rule" for smk, stem in NEEDED_RULES.items()
            if not any(stem in rule for rule in rules_in(smk))]


TRAIN_RULES = rules_in("train.smk")
PREDICT_RULES = rules_in("predict.smk")
RENDER_RULES = rules_in("render.smk")


def tiny_config(data_dir: Path) -> dict[str, Any]:
    """The conftest tiny config (two models on one representation) plus a second, unused
    representation to show that editing one re-renders only it."""
    config = tiny_workflow_config(data_dir, "results")
    assert config["folds"]["n_folds"] == N_FOLDS
    return {
        **config,
        "representations": {"tiny": dict(TINY_REPRESENTATION),
                            "tiny_b": {"n_mass": 32, "n_x": 16}},
        # the analysis stages have their own test (tests/test_analysis.py)
        "explain": {"enabled": False},
        "embed": {"enabled": False},
        "novelty": {"enabled": False},
    }


def copy_workflow(dest: Path) -> None:
    for name in ("Snakefile", "workflow", "src", "envs", "config"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)


def copy_env(workdir: Path) -> dict[str, str]:
    """Jobs of the workflow copy import the copy's library (its src/)."""
    return {"PYTHONPATH": str(workdir / "src")}


def snakemake(workdir: Path, *args: str, config: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Snakemake on the workflow copy in ``workdir`` (its Snakefile, tiny.yaml by default),
    importing the copy's own library (its src/), so that editing a module there is seen;
    a failing run raises with its output and logs."""
    return run_snakemake(workdir, config=config or workdir / "tiny.yaml", extra=args,
                         env={**copy_env(workdir), **(env or {})},
                         snakefile=workdir / "Snakefile")


@pytest.fixture(scope="module")
def completed_run(tiny_mars2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow copy that has run to completion on the tiny config (once per module)."""
    if missing_stages():
        pytest.skip("the pipeline is not complete yet: " + "; ".join(missing_stages()))
    workdir = tmp_path_factory.mktemp("rerun")
    copy_workflow(workdir)
    shutil.copytree(tiny_mars2, workdir / "data")  # tests add runs to this copy
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(workdir / "data")))
    # two (fake) GPUs declared: the 4 train jobs lease devices (checked below)
    fake_gpus = {"SPECTROVISION_FAKE_GPUS": "2",
                 "SPECTROVISION_GPU_LOCK_DIR": str(workdir / "gpu-locks")}
    snakemake(workdir, "--resources", "gpu=2", "--quiet", "all", env=fake_gpus)
    return workdir


def planned_jobs(workdir: Path, config: dict[str, Any] | None = None
                 ) -> list[tuple[str, dict[str, str]]]:
    """Jobs a dry run plans, optionally under an edited config (written beside the run)."""
    path = None
    if config is not None:
        path = workdir / "edited.yaml"
        path.write_text(yaml.safe_dump(config))
    return dry_run(workdir, config=path or workdir / "tiny.yaml",
                   snakefile=workdir / "Snakefile", env=copy_env(workdir))


def rule_counts(jobs: list[tuple[str, dict[str, str]]]) -> Counter[str]:
    return Counter(rule for rule, _ in jobs)


def base_config(workdir: Path) -> dict[str, Any]:
    return yaml.safe_load((workdir / "tiny.yaml").read_text())


def test_parse_dry_run_reads_rules_and_wildcards():
    text = ("rule train:\n    input: a\n    wildcards: model=m, fold=1\n    resources: x\n\n"
            "localrule all:\n    input: b\n")
    assert parse_dry_run(text) == [("train", {"model": "m", "fold": "1"}), ("all", {})]


def test_a_complete_run_plans_nothing(completed_run):
    assert planned_jobs(completed_run) == []


def test_editing_one_models_lr_retrains_only_that_model(completed_run):
    config = base_config(completed_run)
    config["models"]["tiny_pool"]["lr"] = 1.0e-3
    jobs = planned_jobs(completed_run, config)
    counts = rule_counts(jobs)
    retrained = [w for r, w in jobs if r in TRAIN_RULES]
    assert {w["model"] for w in retrained} == {"tiny_pool"}
    assert sorted(int(w["fold"]) for w in retrained) == list(range(N_FOLDS))
    assert {w["model"] for r, w in jobs if r in PREDICT_RULES} == {"tiny_pool"}
    assert [w for r, w in jobs if r == "gather_model"] == [{"model": "tiny_pool"}]
    assert set(counts) == TRAIN_RULES | PREDICT_RULES | {"gather_model"} | ENSEMBLE_ON \
        | REPORT_ON_RESULTS


def test_editing_tta_widths_repredicts_without_retraining(completed_run):
    config = base_config(completed_run)
    config["predict"]["tta_n_widths"] = 3
    counts = rule_counts(planned_jobs(completed_run, config))
    assert not TRAIN_RULES & set(counts)
    assert sum(counts[r] for r in PREDICT_RULES) == 2 * N_FOLDS  # every model x fold
    assert counts["gather_model"] == 2
    assert set(counts) == PREDICT_RULES | {"gather_model"} | ENSEMBLE_ON | (
        REPORT_ON_RESULTS - {"report_training_curves"})


def test_adding_a_model_trains_only_the_new_model(completed_run):
    config = base_config(completed_run)
    config["models"]["tiny_extra"] = {"representation": "tiny", "backbone": "resnet10t",
                                      "head": "pool", "lr": 1.0e-3}
    jobs = planned_jobs(completed_run, config)
    assert {w["model"] for r, w in jobs if r in TRAIN_RULES | PREDICT_RULES} == {"tiny_extra"}
    assert sum(1 for r, _ in jobs if r in TRAIN_RULES) >= N_FOLDS
    assert not RENDER_RULES & set(rule_counts(jobs)), "renders are reused"
    assert not {r for r, _ in jobs} & {"baseline", "folds"}


def test_editing_one_representation_rerenders_only_it(completed_run):
    config = base_config(completed_run)
    config["representations"]["tiny_b"]["n_x"] = 20
    jobs = planned_jobs(completed_run, config)
    rendered = [w for r, w in jobs if r in RENDER_RULES]
    assert rendered and {w["rep"] for w in rendered} == {"tiny_b"}
    assert not TRAIN_RULES & {r for r, _ in jobs}, "no model reads tiny_b"
    assert [w for r, w in jobs if r == "report_renders"] == [{"rep": "tiny_b"}]


@contextlib.contextmanager
def added_runs(workdir: Path, split: str, n: int) -> Iterator[list[str]]:
    """``n`` new runs in ``split`` (copies of one run of that split under new ids; labelled
    ones get that run's labels), undone afterwards."""
    data = workdir / "data"
    tables = [data / "metadata.csv", data / "train_labels.csv"]
    saved = {path: path.read_text() for path in tables}
    meta = pd.read_csv(tables[0], dtype=str)
    source = meta[meta["split"] == split].iloc[0]
    rows, ids, copies = [], [], []
    for i in range(n):
        sample_id = f"added_{split}_{i:02d}"
        copy = Path(source["features_path"]).with_name(f"{sample_id}.csv")
        shutil.copy(data / source["features_path"], data / copy)
        rows.append({**source.to_dict(), "sample_id": sample_id, "features_path": str(copy)})
        ids.append(sample_id)
        copies.append(data / copy)
    pd.concat([meta, pd.DataFrame(rows)]).to_csv(tables[0], index=False)
    if split == "train":
        labels = pd.read_csv(tables[1], dtype={"sample_id": str})
        row = labels[labels["sample_id"] == source["sample_id"]]
        extra = pd.concat([row.assign(sample_id=i) for i in ids])
        pd.concat([labels, extra]).to_csv(tables[1], index=False)
    try:
        yield ids
    finally:
        for path, text in saved.items():
            path.write_text(text)
        for copy in copies:
            copy.unlink()


def shards_of(workdir: Path, ids: list[str], labelled: bool) -> set[str]:
    n = base_config(workdir)["workflow"]["shards"]
    return {str(s) for s in sample_shards(ids, [labelled] * len(ids), n)}


PREDICT_SIDE = {"ingest_shard", "qc_summary", "render_shard", "stack_render", "predict",
                "gather_model", "baseline", "tabular", "ensemble", "submission",
                "trained_manifest", "all", "report_qc", *REPORT_ON_RESULTS}


def test_new_unlabelled_runs_are_predicted_never_retrained(completed_run):
    with added_runs(completed_run, "test", 20) as ids:
        jobs = planned_jobs(completed_run)
    counts = rule_counts(jobs)
    assert not TRAIN_RULES & set(counts), "no train job"
    assert not {"labelled_sheet", "folds"} & set(counts)
    assert set(counts) <= PREDICT_SIDE and counts["predict"] == 2 * N_FOLDS
    n = base_config(completed_run)["workflow"]["shards"]
    ingested = {w["shard"] for r, w in jobs if r == "ingest_shard"}
    assert ingested == shards_of(completed_run, ids, labelled=False)
    assert all(int(s) >= n for s in ingested), "only unlabelled shards"
    assert {w["split"] for r, w in jobs if r == "stack_render"} == {"test"}
    assert {w["shard"] for r, w in jobs if r == "render_shard"} == ingested


def test_new_labelled_runs_retrain_but_untouched_shards_keep_their_renders(completed_run):
    with added_runs(completed_run, "train", 20) as ids:
        jobs = planned_jobs(completed_run)
    counts = rule_counts(jobs)
    assert counts["labelled_sheet"] == 1 and counts["folds"] == 1
    assert sum(counts[r] for r in TRAIN_RULES) == 2 * N_FOLDS  # folds changed: expected
    touched = shards_of(completed_run, ids, labelled=True)
    assert {w["shard"] for r, w in jobs if r == "ingest_shard"} == touched
    assert {w["shard"] for r, w in jobs if r == "render_shard"} == touched
    # the labelled splits share the labelled shards; the test stack is untouched
    assert {w["split"] for r, w in jobs if r == "stack_render"} == {"train", "val"}


def test_editing_the_submission_format_reruns_only_the_submission(completed_run):
    data = completed_run / "data"
    shutil.copy(data / "submission_format.csv", data / "submission_format_b.csv")
    config = base_config(completed_run)
    config["data"]["submission_format"] = "submission_format_b.csv"
    assert rule_counts(planned_jobs(completed_run, config)) == Counter(
        {"submission": 1, "all": 1})


def test_editing_the_clip_reruns_only_the_ensemble_stage(completed_run):
    config = base_config(completed_run)
    config["ensemble"]["clip"] = 2.0e-4
    counts = rule_counts(planned_jobs(completed_run, config))
    assert "ensemble" in counts
    # the member tables average clipped fold probabilities, so gather and the fitted
    # members re-write theirs; nothing trains, predicts, renders or ingests again
    assert set(counts) <= {"gather_model", "baseline", "tabular"} | ENSEMBLE_ON | \
        REPORT_ON_RESULTS
    assert not TRAIN_RULES & set(counts) and not PREDICT_RULES & set(counts)


def rule_scripts(workdir: Path) -> dict[str, Path]:
    """Each rule's script."""
    scripts: dict[str, Path] = {}
    for smk in sorted((workdir / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in smk.read_text().splitlines():
            if header := re.match(r"^rule (\w+):", line):
                rule = header.group(1)
            names = re.findall(r'"\.\./scripts/(\w+)\.py"', line)
            if rule and names:
                scripts[rule] = workdir / "workflow" / "scripts" / f"{names[0]}.py"
    return scripts


def test_changing_library_code_reruns_the_rules_behind_it(completed_run):
    """A code edit re-runs exactly the rules whose script reaches the module (its import
    closure), and nothing else."""
    from spectrovision.provenance import code

    module = completed_run / "src" / "spectrovision" / "report" / "figures.py"
    ran = set(rule_counts(parse_dry_run(snakemake(completed_run, "--dry-run",
                                                  "--forceall").stdout)))
    reaching = {rule for rule, script in rule_scripts(completed_run).items()
                if "spectrovision.report.figures" in code.import_closure(
                    code.script_imports(script))}
    original = module.read_text()
    try:
        module.write_text(original + "\n# a code change\n")
        counts = rule_counts(planned_jobs(completed_run))
    finally:
        module.write_text(original)
    assert set(counts) - {"all"} == reaching & ran
    report_rules = {r for r in counts if r.startswith("report_")}
    assert set(counts) == report_rules | {"all"}
    assert report_rules == REPORT_ON_RESULTS | {"report_qc", "report_renders"}
    assert counts["report_renders"] == 2  # both representations


def test_submission_provenance_holds_the_whole_lineage(completed_run):
    lineage = build_lineage("results/submission.csv", base=completed_run)
    rules = Counter(node.get("rule") for node in lineage["nodes"].values())
    # the submission reads the ensemble's test logits and, for labelled template rows, its
    # out-of-fold logits: two files of one ensemble job
    assert rules["submission"] == 1 and rules["ensemble"] == 2
    assert sum(rules[r] for r in TRAIN_RULES) >= 2 * N_FOLDS
    raw = [p for p, node in lineage["nodes"].items() if node["kind"] == "file"
           and str(completed_run / "data") in p]
    assert raw, "the lineage reaches the raw runs"
    embedded = json.loads(
        (completed_run / "results" / "submission.csv.provenance.json").read_text())
    assert set(lineage["nodes"]) - {"results/submission.csv"} <= set(
        embedded["extra"]["lineage"]["nodes"])


LEASE_LINE = re.compile(r"^(\S+ \S+) INFO spectrovision.learn.lease: (leased|released) GPU (\d+)")


def lease_intervals(log: Path) -> list[tuple[str, datetime, datetime]]:
    """(gpu, from, to) of each lease a job's log records."""
    held: dict[str, datetime] = {}
    out = []
    for line in log.read_text().splitlines():
        if match := LEASE_LINE.match(line):
            when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            if match.group(2) == "leased":
                held[match.group(3)] = when
            else:
                out.append((match.group(3), held.pop(match.group(3)), when))
    return out


def test_train_jobs_under_two_gpus_never_share_a_device(completed_run):
    logs = sorted((completed_run / "results" / "logs" / "train").glob("*/fold*.log"))
    assert len(logs) == 2 * N_FOLDS
    leases = [lease for log in logs for lease in lease_intervals(log)]
    assert len(leases) == len(logs)  # every train job held exactly one device
    assert {gpu for gpu, _, _ in leases} <= {"0", "1"}
    for i, (gpu_a, start_a, end_a) in enumerate(leases):
        for gpu_b, start_b, end_b in leases[i + 1:]:
            if start_a < end_b and start_b < end_a:  # ran at the same time
                assert gpu_a != gpu_b


def test_snakemake_report_holds_every_stage(completed_run):
    """`snakemake --report` builds one HTML file with each category and its plots."""
    proc = snakemake(completed_run, "--report", "report.html")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = (completed_run / "report.html").read_text(errors="ignore")
    for category in ("Data quality", "Renders", "Training", "Out-of-fold scores", "Ensemble"):
        assert category in html, category
    for plot in ("qc_summary.html", "training_curves.png", "calibration.png",
                 "member_correlation.png", "ensemble_selection.png", "baseline_comparison.png",
                 "oof_loss_per_label.png", "curve.png"):
        assert plot in html, plot


def test_jobs_carry_their_models_cost_as_priority(completed_run):
    """With a 1-D member on its own representation beside the 2-D ones, every train and
    predict job's priority is its model's learn.cost.train_priority, each representation's
    render and stack jobs rank one above the costliest train job reading them, and ingest,
    the labelled sheet and folds one above every train job, and the other jobs on the way
    to the ensemble rank 1: Snakemake renders the 2-D members' images first and starts
    their folds first, and gathers and baselines before the analyses and reports (0)."""
    config = base_config(completed_run)
    config["models"]["tiny_conv1d"] = {"representation": "tiny_b", "backbone": "conv1d",
                                       "head": "pool", "epochs": 3}
    path = completed_run / "edited.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_snakemake(completed_run, config=path, snakefile=completed_run / "Snakefile",
                         env=copy_env(completed_run), extra=("--dry-run", "--forceall"))
    priorities: dict[tuple[str, str], set[int]] = {}
    for rule, block in re.findall(r"(?:local)?rule (\w+):\n((?:[ \t]+.*\n)+)", proc.stdout):
        wildcards = re.search(r"wildcards: (?:model|rep)=(\w+)", block)
        priority = re.search(r"priority: (\d+)", block)
        key = (rule, wildcards.group(1) if wildcards else "")
        priorities.setdefault(key, set()).add(int(priority.group(1)) if priority else 0)
    two_d = TIMM_EPOCH_FACTOR * config["model_defaults"]["epochs"]
    for rule in ("train", "predict"):
        for model, cost in (("tiny_pool", two_d), ("tiny_timeavg", two_d), ("tiny_conv1d", 3)):
            assert priorities[(rule, model)] == {cost}, (rule, model)
    for rule in ("render_shard", "stack_render"):
        assert priorities[(rule, "tiny")] == {two_d + 1}, rule
        assert priorities[(rule, "tiny_b")] == {3 + 1}, rule
    for rule in ("ingest_shard", "labelled_sheet", "folds"):
        assert priorities[(rule, "")] == {two_d + 1}, rule
    assert priorities[("gather_model", "tiny_conv1d")] == {1}
    for rule in ("baseline", "ensemble"):
        assert {p for (r, _), ps in priorities.items() if r == rule for p in ps} == {1}, rule
    for rule in ("report_scores", "submission", "qc_summary"):
        assert priorities[(rule, "")] == {0}, rule
