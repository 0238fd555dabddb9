"""spectrovision status: per model x fold state and time left, from the results folder."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from spectrovision.cli import main
from spectrovision.learn.progress import (
    estimate_waiting,
    format_status,
    job_status,
    progress_path,
    progress_record,
    run_status,
)

NOW = 1_000_000.0


def _done(results: Path, model: str, fold: int, epochs: int, seconds: float) -> None:
    out = results / "models" / model / f"fold{fold}" / "metrics.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps({"epochs": epochs, "seconds": seconds}))


def _progress(results: Path, model: str, fold: int, epoch: int, epochs: int,
              seconds: list[float], age: float) -> None:
    path = progress_path(results, model, fold)
    path.parent.mkdir(parents=True)
    record = progress_record(epoch, epochs, seconds)
    record["updated"] = NOW - age
    path.write_text(json.dumps(record))


def test_states_and_time_left(tmp_path):
    _done(tmp_path, "a", 0, 10, 100.0)
    _progress(tmp_path, "a", 1, 4, 10, [9.0, 11.0, 10.0, 10.0], age=5.0)
    _progress(tmp_path, "b", 0, 2, 6, [30.0, 30.0], age=3600.0)  # quiet for an hour
    jobs = estimate_waiting(run_status(tmp_path, {"a": 10, "b": 6}, 2, now=NOW))
    by_key = {(j.model, j.fold): j for j in jobs}
    assert by_key["a", 0].state == "done" and by_key["a", 0].epoch_seconds == 10.0
    running = by_key["a", 1]
    assert running.state == "running" and (running.epoch, running.epochs) == (4, 10)
    assert running.seconds_left == 60.0  # 6 epochs left at 10 s
    assert by_key["b", 0].state == "interrupted" and by_key["b", 0].seconds_left == 120.0
    waiting = by_key["b", 1]
    assert waiting.state == "waiting" and waiting.seconds_left == 180.0  # b's 30 s x 6
    text = format_status(jobs)
    assert "1 done, 1 running, 1 interrupted, 1 waiting" in text
    assert "about 6m00s left at 1 job(s) at a time" in text  # 60 + 120 + 180 s


def test_nothing_measured_yet_says_so(tmp_path):
    job = job_status(tmp_path, "m", 0, 5, now=NOW)
    assert job.state == "waiting" and job.seconds_left is None
    assert "+1 jobs with no measured epoch yet" in format_status([job])


def test_cli_reads_the_config_and_its_results(tmp_path, capsys):
    config = {"results": "out", "representations": {"r": {"n_mass": 8}},
              "folds": {"n_folds": 2},
              "models": {"m": {"representation": "r", "backbone": "resnet10t", "epochs": 3}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    _done(tmp_path / "out", "m", 0, 3, 30.0)
    assert main(["status", "--configfile", str(path), "--directory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"results: {tmp_path / 'out'}" in out
    assert "1 done, 0 running, 0 interrupted, 1 waiting" in out
    assert "about 0m30s left" in out  # fold 1 waits: 3 epochs at the 10 s measured
    assert main(["status", "--configfile", str(tmp_path / "nope.yaml")]) == 2
