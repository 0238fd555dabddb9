"""Gather, selection, weights and scores of the ensemble step (small constructed tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spectrovision.ensemble.build import build_ensemble
from spectrovision.ensemble.combine import combine_logits
from spectrovision.ensemble.gather import gather_member
from spectrovision.ensemble.selection import (bagged_select, ensemble_loss, fit_label_weights,
                                              greedy_select)
from spectrovision.errors import InputError
from spectrovision.metrics import clipped_logits, log_loss_per_label, sigmoid
from support import derived_config, dry_run_jobs, run_snakemake, write_config

LABELS = ["a", "b"]
CLIP = 1e-3


def _table(ids, values):
    table = pd.DataFrame(np.asarray(values, dtype=float), columns=LABELS)
    table.insert(0, "sample_id", ids)
    return table


def _folds():
    return pd.DataFrame({"sample_id": ["s1", "s2", "s3", "s4", "s5"], "fold": [0, 1, -1, 0, 1]})


def test_gather_test_is_logit_of_mean_clipped_probability():
    x0 = [[20.0, -1.0], [0.5, 0.0]]
    x1 = [[2.0, -30.0], [-0.5, 3.0]]
    # fold 1 lists the test samples in another order: rows are matched by id
    tests = {0: _table(["t1", "t2"], x0), 1: _table(["t2", "t1"], [x1[1], x1[0]])}
    oofs = {0: _table(["s4", "s1"], [[1, 1], [2, 2]]), 1: _table(["s2", "s5"], [[3, 3], [4, 4]])}
    _, test = gather_member(oofs, tests, _folds(), LABELS, CLIP)
    p = (np.clip(1 / (1 + np.exp(-np.array(x0))), CLIP, 1 - CLIP)
         + np.clip(1 / (1 + np.exp(-np.array(x1))), CLIP, 1 - CLIP)) / 2
    assert list(test["sample_id"]) == ["t1", "t2"]
    np.testing.assert_allclose(test[LABELS].to_numpy(), np.log(p / (1 - p)), rtol=1e-12)


def test_gather_oof_has_every_held_out_sample_once_with_its_fold():
    oofs = {0: _table(["s4", "s1"], [[1, 1], [2, 2]]), 1: _table(["s2", "s5"], [[3, 3], [4, 4]])}
    tests = {k: _table(["t1"], [[0, 0]]) for k in (0, 1)}
    oof, _ = gather_member(oofs, tests, _folds(), LABELS, CLIP)
    assert list(oof["sample_id"]) == ["s1", "s2", "s4", "s5"]  # folds.csv order, no fold -1
    assert list(oof["fold"]) == [0, 1, 0, 1]
    assert list(oof["a"]) == [2.0, 3.0, 1.0, 4.0]


def test_gather_rejects_a_fold_table_missing_a_held_out_sample():
    oofs = {0: _table(["s4"], [[1, 1]]), 1: _table(["s2", "s5"], [[3, 3], [4, 4]])}
    tests = {k: _table(["t1"], [[0, 0]]) for k in (0, 1)}
    with pytest.raises(InputError, match="s1"):
        gather_member(oofs, tests, _folds(), LABELS, CLIP)


def _members(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.4).astype(float)
    signal = 2 * y - 1
    members = {
        "good": 3.0 * signal + rng.normal(0, 1.0, y.shape),
        "ok": 1.0 * signal + rng.normal(0, 1.5, y.shape),
        "harmful": -2.0 * signal + rng.normal(0, 1.0, y.shape),
    }
    return y, members


def test_greedy_picks_the_better_model_and_rejects_a_harmful_one():
    y, members = _members()
    chosen, path = greedy_select(members, y, CLIP)
    assert chosen[0] == "good"
    assert "harmful" not in chosen
    losses = [step["loss"] for step in path]
    assert losses == sorted(losses, reverse=True)  # every step lowers the loss
    assert path[-1]["loss"] == pytest.approx(ensemble_loss([members[m] for m in chosen], y, CLIP))


def test_greedy_is_deterministic_and_ties_break_by_name():
    y, members = _members()
    twins = {"b_copy": members["good"], "a_copy": members["good"].copy()}
    chosen, _ = greedy_select(twins, y, CLIP)
    assert chosen == ["a_copy"]  # equal losses: the first name wins, the copy adds nothing
    assert greedy_select(members, y, CLIP) == greedy_select(dict(reversed(members.items())), y, CLIP)


def test_backward_elimination_removes_a_member_that_stopped_helping():
    # m1 and m2 carry opposite shared noise: together they cancel it, which makes the
    # first pick (m0, best alone) superfluous once both are in
    rng = np.random.default_rng(16)
    y = (rng.random((200, 1)) < 0.5).astype(float)
    s = 2 * y - 1
    members = {}
    for i in range(4):
        scale, spread = rng.uniform(0.3, 3), rng.uniform(0.5, 3)
        members[f"m{i}"] = scale * s + rng.normal(0, spread, y.shape)
    shared = rng.normal(0, 2, y.shape)
    members["m1"] = members["m1"] + shared
    members["m2"] = members["m2"] - shared
    chosen, path = greedy_select(members, y, CLIP)
    removals = [step for step in path if step["action"] == "remove"]
    assert removals, path
    first = path[0]["member"]
    assert removals[0]["member"] == first and first not in chosen
    assert removals[0]["loss"] < path[path.index(removals[0]) - 1]["loss"]
    final = ensemble_loss([members[m] for m in chosen], y, CLIP)
    assert final == pytest.approx(path[-1]["loss"])
    assert final < ensemble_loss([members[m] for m in chosen] + [members[first]], y, CLIP)


def test_combine_averages_clipped_logits_not_probabilities():
    a, b = np.array([[10.0]]), np.array([[-1.0]])
    combined = combine_logits([a, b], CLIP)
    assert combined[0, 0] == pytest.approx((np.log((1 - CLIP) / CLIP) - 1.0) / 2)


def _frames(y, members):
    ids = [f"s{i:03d}" for i in range(len(y))]
    folds = np.arange(len(y)) % 3
    oof = {m: _table(ids, x).assign(fold=folds) for m, x in members.items()}
    test = {m: _table(["t2", "t1"], x[:2]) for m, x in members.items()}
    label_table = pd.DataFrame(y, columns=LABELS, index=pd.Index(ids, name="sample_id"))
    return oof, test, label_table


def test_build_ensemble_all_and_list_modes():
    y, members = _members()
    oof, test, label_table = _frames(y, members)
    every = build_ensemble(oof, test, label_table, LABELS, ["good", "harmful", "ok"], "all",
                           clip=CLIP)
    assert every.selection["members"] == ["good", "harmful", "ok"]
    expected = combine_logits([members[m] for m in ("good", "harmful", "ok")], CLIP)
    np.testing.assert_allclose(every.oof[LABELS].to_numpy(), expected)
    listed = build_ensemble(oof, test, label_table, LABELS, ["good", "harmful", "ok"], "list",
                            listed=["ok"], clip=CLIP)
    assert listed.selection["members"] == ["ok"]
    np.testing.assert_allclose(listed.test[LABELS].to_numpy(), clipped_logits(members["ok"][:2], CLIP))
    assert list(listed.test["sample_id"]) == ["t2", "t1"]
    with pytest.raises(InputError, match="nope"):
        build_ensemble(oof, test, label_table, LABELS, ["good"], "list", listed=["nope"], clip=CLIP)


def test_scores_hold_every_member_the_ensemble_and_a_mean_row():
    y, members = _members()
    oof, test, label_table = _frames(y, members)
    result = build_ensemble(oof, test, label_table, LABELS, ["good", "ok"], "greedy", clip=CLIP)
    scores = result.scores
    assert set(scores["member"]) == {"good", "ok", "harmful", "ensemble", "ensemble_nested"}
    assert list(scores.columns) == ["member", "label", "log_loss"]
    for member, rows in scores.groupby("member"):
        assert list(rows["label"]) == LABELS + ["mean"]
        assert rows["log_loss"].iloc[-1] == pytest.approx(rows["log_loss"].iloc[:-1].mean())
    harmful = log_loss_per_label(y, np.clip(sigmoid(members["harmful"]), CLIP, 1 - CLIP))
    got = scores[(scores["member"] == "harmful") & (scores["label"] == "a")]["log_loss"].item()
    assert got == pytest.approx(harmful[0])
    assert "biased" in result.selection["note"]


def test_nested_score_equals_the_ensemble_when_nothing_is_chosen_on_the_rows():
    y, members = _members()
    oof, test, label_table = _frames(y, members)
    for selection in ("all", "list"):
        result = build_ensemble(oof, test, label_table, LABELS, ["good", "ok"], selection,
                                listed=["ok", "good"], clip=CLIP)
        mean = result.selection["oof_mean_log_loss"]
        assert mean["ensemble_nested"] == pytest.approx(mean["ensemble"], rel=1e-12)
        assert result.selection["nested"]["oof_mean_log_loss"] == mean["ensemble_nested"]


def test_nested_score_exposes_a_greedy_choice_made_on_the_scored_rows():
    # 40 members of pure noise around the prior: greedy picks the luckiest on all rows, so
    # its in-sample score beats the prior; chosen without the scored fold it cannot
    rng = np.random.default_rng(3)
    n = 240
    y = (rng.random((n, 2)) < 0.3).astype(float)
    prior = np.log(0.3 / 0.7)
    members = {f"noise{k:02d}": prior + rng.normal(0, 0.6, (n, 2)) for k in range(40)}
    oof, test, label_table = _frames(y, members)
    result = build_ensemble(oof, test, label_table, LABELS, list(members), "greedy", clip=CLIP)
    mean = result.selection["oof_mean_log_loss"]
    assert mean["ensemble"] < mean["ensemble_nested"] - 0.005
    by_fold = result.selection["nested"]["members_by_held_out_fold"]
    assert sorted(by_fold) == ["0", "1", "2"]
    assert len({tuple(v) for v in by_fold.values()}) > 1  # each fold chose its own members
    # fold 0's members are what greedy chooses on folds 1 and 2 alone
    chosen, _ = greedy_select({m: x[np.arange(n) % 3 != 0] for m, x in members.items()},
                              y[np.arange(n) % 3 != 0], CLIP)
    assert chosen == by_fold["0"]
    # each label's nested loss: every fold's rows scored with that fold's choice
    got = result.scores.query("member == 'ensemble_nested' and label != 'mean'")
    total = np.zeros(2)
    for fold, names in by_fold.items():
        r = np.arange(n) % 3 == int(fold)
        total += log_loss_per_label(y[r], np.clip(sigmoid(combine_logits(
            [members[m][r] for m in names], CLIP)), CLIP, 1 - CLIP)) * r.sum()
    np.testing.assert_allclose(got["log_loss"].to_numpy(), total / n, rtol=1e-10)


def test_members_with_other_oof_samples_are_rejected():
    y, members = _members()
    oof, test, label_table = _frames(y, members)
    short_oof = {**oof, "ok": oof["ok"].iloc[1:]}
    with pytest.raises(InputError, match="ok"):
        build_ensemble(short_oof, test, label_table, LABELS, ["good", "ok"], "all", clip=CLIP)
    short_test = {**test, "ok": test["ok"].iloc[1:]}
    with pytest.raises(InputError, match="ok/test_logits"):
        build_ensemble(oof, short_test, label_table, LABELS, ["good", "ok"], "all", clip=CLIP)


def test_per_label_weights_are_non_negative_normalised_and_beat_equal_weights():
    rng = np.random.default_rng(1)
    y = (rng.random((400, 2)) < 0.5).astype(float)
    s = 2 * y - 1
    noise = rng.normal(0, 1, y.shape)
    a = np.column_stack([3 * s[:, 0], noise[:, 1]]) + rng.normal(0, 0.5, y.shape)  # good on a
    b = np.column_stack([noise[:, 0], 3 * s[:, 1]]) + rng.normal(0, 0.5, y.shape)  # good on b
    weights = fit_label_weights([a, b], y, CLIP)
    assert weights.shape == (2, 2)
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=0), 1.0)
    assert weights[0, 0] > 0.5 and weights[1, 1] > 0.5
    fitted = log_loss_per_label(y, sigmoid(combine_logits([a, b], CLIP, weights)), CLIP).mean()
    assert fitted < ensemble_loss([a, b], y, CLIP)


def _write_workflow_inputs(root, rng):
    """A tiny data folder, config and the upstream artefacts (folds, renders, predictions)."""
    n_train, n_test = 45, 6
    ids = [f"S{i:04d}" for i in range(n_train + n_test)]
    data = root / "data"
    data.mkdir()
    derivatized = rng.integers(0, 2, len(ids))
    pd.DataFrame({"sample_id": ids, "split": ["train"] * n_train + ["test"] * n_test,
                  "derivatized": [1 if d else None for d in derivatized],
                  "features_path": [f"f/{s}.csv" for s in ids]}).to_csv(data / "metadata.csv",
                                                                         index=False)
    y = (rng.random((n_train, 2)) < 0.4).astype(int)
    pd.DataFrame({"sample_id": ids[:n_train], "x": y[:, 0], "y": y[:, 1]}).to_csv(
        data / "train_labels.csv", index=False)
    template = pd.DataFrame({"sample_id": ids[:n_train - 1:-1], "y": 0.5, "x": 0.5})
    template.to_csv(data / "submission_format.csv", index=False)
    config = derived_config({
        "data": {"dir": "data"}, "workflow": {"shards": 2}, "folds": {"n_folds": 3},
        "representations": {"r": {"n_mass": 4, "n_x": 8}},
        "models": {"good": {"representation": "r"}, "weak": {"representation": "r"}},
        "ensemble": {"selection": "greedy", "include_baselines": True}, "tabular": {},
        "baselines": ["prior", "conditional_prior", "benchmark_lr"]})
    write_config(root / "config.yaml", config)
    results = root / "results"
    (results / "render" / "r").mkdir(parents=True)
    folds = pd.DataFrame({"sample_id": ids[:n_train], "fold": np.arange(n_train) % 3})
    folds.to_csv(results / "folds.csv", index=False)
    for split, rows in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
        np.save(results / "render" / "r" / f"stack_{split}.npy",
                rng.random((len(ids[rows]), 2, 4, 8)).astype(np.float16))
        pd.DataFrame({"sample_id": ids[rows]}).to_csv(
            results / "render" / "r" / f"stack_{split}.csv", index=False)
    for model, strength in (("good", 2.0), ("weak", 0.3)):
        for fold in range(3):
            out = results / "predictions" / model / f"fold{fold}"
            out.mkdir(parents=True)
            held = (folds["fold"] == fold).to_numpy()
            oof = strength * (2 * y[held] - 1) + rng.normal(0, 1, (held.sum(), 2))
            pd.DataFrame({"sample_id": folds["sample_id"][held], "x": oof[:, 0],
                          "y": oof[:, 1]}).to_parquet(out / "oof_logits.parquet", index=False)
            test = rng.normal(0, 1, (n_test, 2))
            pd.DataFrame({"sample_id": ids[n_train:], "x": test[:, 0], "y": test[:, 1]}
                         ).to_parquet(out / "test_logits.parquet", index=False)
    return template


@pytest.mark.slow
def test_gather_logit_mean_is_the_mean_of_clipped_logits():
    x0, x1 = [[20.0, -1.0], [0.5, 0.0]], [[2.0, -30.0], [-0.5, 3.0]]
    tests = {0: _table(["t1", "t2"], x0), 1: _table(["t2", "t1"], [x1[1], x1[0]])}
    oofs = {0: _table(["s4", "s1"], [[1, 1], [2, 2]]), 1: _table(["s2", "s5"], [[3, 3], [4, 4]])}
    _, test = gather_member(oofs, tests, _folds(), LABELS, CLIP, fold_combine="logit_mean")
    expected = (clipped_logits(np.array(x0), CLIP) + clipped_logits(np.array(x1), CLIP)) / 2
    np.testing.assert_allclose(test[LABELS].to_numpy(), expected, rtol=1e-12)
    # confident folds that disagree (logits 6 and -2): the probability mean is near 0.5
    tests = {0: _table(["t1"], [[6.0, 0.0]]), 1: _table(["t1"], [[-2.0, 0.0]])}
    means = {how: gather_member(oofs, tests, _folds(), LABELS, CLIP, fold_combine=how)[1]
             for how in ("prob_mean", "logit_mean")}
    assert means["prob_mean"].loc[0, "a"] < 0.3
    assert means["logit_mean"].loc[0, "a"] == pytest.approx(2.0)


def _fold_models(seed, n=600, n_test=3000, k=5, noises=(3.0, 1.5)):
    """Labelled rows (fold i % k) and test rows of members whose every fold model is
    calibrated on its own (its logit = the attenuated logit of the truth seen through its
    own noise) but confident and in disagreement with the other folds' models: the
    situation of issue 19, OOF rows from one model, test rows from k of them."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(-1.0, 2.0, (n + n_test, len(LABELS)))
    y = (rng.random(truth.shape) < sigmoid(truth)).astype(float)
    ids = [f"s{i}" for i in range(n + n_test)]
    fold = np.arange(n) % k
    folds = pd.DataFrame({"sample_id": ids[:n], "fold": fold})
    members = {}
    for m, noise in enumerate(noises):
        beta = 4.0 / (4.0 + noise ** 2)  # the calibrated slope of truth + noise
        models = [beta * (truth + 1.0 + rng.normal(0, noise, truth.shape)) - 1.0
                  for _ in range(k)]
        oofs = {f: _table([ids[i] for i in np.flatnonzero(fold == f)], models[f][:n][fold == f])
                for f in range(k)}
        tests = {f: _table(ids[n:], models[f][n:]) for f in range(k)}
        members[f"m{m}"] = (oofs, tests)
    return members, folds, pd.DataFrame(y, columns=LABELS, index=ids), ids[n:], y[n:]


def _test_loss(result, test_ids, y_test):
    x = result.test.set_index("sample_id").loc[test_ids, LABELS].to_numpy()
    return float(log_loss_per_label(y_test, sigmoid(x), CLIP).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_fitted_on_oof_rows_transfer_to_logit_mean_test_tables(seed):
    """OOF rows come from one fold model, the test rows from five that disagree: averaging
    their probabilities makes the test tables less confident than the rows the weights were
    fitted on, and the ensemble's test log loss (known test labels) suffers; averaging their
    logits keeps one model's scale and does better."""
    members, folds, label_table, test_ids, y_test = _fold_models(seed)
    losses, spread = {}, {}
    for how in ("prob_mean", "logit_mean"):
        oof, test = {}, {}
        for name, (oofs, tests) in members.items():
            oof[name], test[name] = gather_member(oofs, tests, folds, LABELS, CLIP,
                                                  fold_combine=how)
        result = build_ensemble(oof, test, label_table, LABELS, list(oof), "all",
                                per_label_weights=True, clip=CLIP)
        losses[how] = _test_loss(result, test_ids, y_test)
        spread[how] = float(test["m0"][LABELS].abs().to_numpy().mean()
                            / oof["m0"][LABELS].abs().to_numpy().mean())
    assert spread["prob_mean"] < spread["logit_mean"] - 0.05  # under-confident test table
    assert losses["logit_mean"] < losses["prob_mean"] - 0.003


def _overconfident(n=500, seed=0):
    """Members whose logits are the truth's times 4 plus noise: too confident."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(-1.0, 1.0, (n, len(LABELS)))
    y = (rng.random(truth.shape) < sigmoid(truth)).astype(float)
    x = {f"m{m}": 4.0 * truth + rng.normal(0, 2.0, truth.shape) for m in range(2)}
    return x, y


def test_combine_with_a_prior_gives_the_rest_of_the_weight_to_the_prior():
    x = [np.array([[2.0, -1.0]]), np.array([[4.0, 3.0]])]
    w = np.array([[0.25, 0.5], [0.25, 0.0]])
    prior = np.array([-2.0, 1.0])
    out = combine_logits(x, CLIP, w, prior=prior)
    np.testing.assert_allclose(out, [[0.25 * 2 + 0.25 * 4 + 0.5 * -2, 0.5 * -1 + 0.5 * 1]])
    with pytest.raises(ValueError, match="at most one"):
        combine_logits(x, CLIP, np.array([[0.75, 0.5], [0.5, 0.0]]), prior=prior)


@pytest.mark.parametrize("per_label", [False, True])
def test_shrink_pulls_over_confident_members_toward_the_prior_and_is_nested(per_label):
    x, y = _overconfident()
    ids = [f"s{i}" for i in range(len(y))]
    folds = np.arange(len(y)) % 5
    oof = {m: _table(ids, v).assign(fold=folds) for m, v in x.items()}
    label_table = pd.DataFrame(y, columns=LABELS, index=ids)
    plain = build_ensemble(oof, oof, label_table, LABELS, list(x), "all", (), per_label, CLIP)
    shrunk = build_ensemble(oof, oof, label_table, LABELS, list(x), "all", (), per_label, CLIP,
                            shrink=True)
    sums = pd.DataFrame(shrunk.selection["weights"]).sum(axis=1)
    assert (sums < 0.6).all()  # a real shrink, on every label
    assert set(shrunk.selection["prior"]) == set(LABELS)
    mean = {name: r.scores.query("label == 'mean'").set_index("member")["log_loss"]
            for name, r in (("plain", plain), ("shrunk", shrunk))}
    assert mean["shrunk"]["ensemble_nested"] < mean["plain"]["ensemble_nested"] - 0.05
    assert mean["shrunk"]["ensemble"] <= mean["shrunk"]["ensemble_nested"]
    # the test table is the same combination as the OOF rows
    np.testing.assert_allclose(shrunk.test[LABELS].to_numpy(), shrunk.oof[LABELS].to_numpy())


def test_shrink_of_a_calibrated_member_stays_near_one():
    rng = np.random.default_rng(3)
    truth = rng.normal(-1.0, 2.0, (2000, len(LABELS)))
    y = (rng.random(truth.shape) < sigmoid(truth)).astype(float)
    ids = [f"s{i}" for i in range(len(y))]
    oof = {"m": _table(ids, truth).assign(fold=np.arange(len(y)) % 5)}
    result = build_ensemble(oof, oof, pd.DataFrame(y, columns=LABELS, index=ids), LABELS,
                            ["m"], "all", clip=CLIP, shrink=True)
    assert all(w > 0.9 for w in result.selection["weights"]["m"].values())


def _lucky_row_members(seed):
    """Two good members and one worse one ('lucky') that alone gets one row right which
    the good ones get confidently wrong: one greedy pass takes it in for that row."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0.0, 2.0, (400, 1))
    y = (rng.random(truth.shape) < sigmoid(truth)).astype(float)
    x = {"good1": truth + rng.normal(0, 1.0, truth.shape),
         "good2": truth + rng.normal(0, 1.0, truth.shape),
         "lucky": truth + rng.normal(0, 1.5, truth.shape)}
    y[0] = 1.0
    x["good1"][0] = x["good2"][0] = -4.0
    x["lucky"][0] = 4.0
    return x, y


@pytest.mark.parametrize("seed", range(5))
def test_bagged_selection_weighs_a_member_that_wins_on_one_row_less_than_greedy(seed):
    x, y = _lucky_row_members(seed)
    chosen, _ = greedy_select(x, y, CLIP)
    assert "lucky" in chosen  # one pass gives it a full share
    members, bags, weights = bagged_select(x, y, CLIP, bags=25, seed=0)
    assert weights["lucky"] < 0.8 / len(chosen)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert members == sorted(weights, key=lambda m: (-weights[m], m)) and len(bags) == 25


def test_bagged_weights_are_the_mean_share_over_seeded_bootstrap_bags():
    x, y = _lucky_row_members(0)
    _, bags, weights = bagged_select(x, y, CLIP, bags=7, seed=3)
    rng = np.random.default_rng(3)
    expected: dict[str, float] = {}
    for bag in bags:
        rows = rng.integers(0, len(y), len(y))
        chosen, _ = greedy_select({m: v[rows] for m, v in x.items()}, y[rows], CLIP)
        assert bag["members"] == chosen
        for m in chosen:
            expected[m] = expected.get(m, 0.0) + 1.0 / (len(chosen) * 7)
    assert weights == pytest.approx(expected)
    assert bagged_select(x, y, CLIP, bags=7, seed=3)[2] == weights  # same seed, same weights
    assert bagged_select(x, y, CLIP, bags=7, seed=4)[1] != bags


def test_build_ensemble_bagged_combines_with_the_bag_weights_and_is_nested():
    x, y = _lucky_row_members(1)
    labels = ["a"]
    ids = [f"s{i}" for i in range(len(y))]
    oof = {m: pd.DataFrame({"sample_id": ids, "a": v[:, 0], "fold": np.arange(len(y)) % 5})
           for m, v in x.items()}
    label_table = pd.DataFrame(y, columns=labels, index=ids)
    result = build_ensemble(oof, oof, label_table, labels, list(x), "bagged", clip=CLIP,
                            bags=9, bag_seed=2)
    info = result.selection
    w = np.array([[info["weights"][m]["a"]] for m in info["members"]])
    expected = combine_logits([x[m] for m in info["members"]], CLIP, w)
    np.testing.assert_allclose(result.oof[labels].to_numpy(), expected)
    np.testing.assert_allclose(result.test[labels].to_numpy(), expected)
    assert len(info["bags"]) == 9 and info["bag_seed"] == 2 and info["greedy_path"] == []
    mean = result.scores.query("label == 'mean'").set_index("member")["log_loss"]
    assert mean["ensemble_nested"] > mean["ensemble"]  # re-chosen without each fold
    shrunk = build_ensemble(oof, oof, label_table, labels, list(x), "bagged", clip=CLIP,
                            shrink=True, bags=9, bag_seed=2)
    ratio = [shrunk.selection["weights"][m]["a"] / info["weights"][m]["a"]
             for m in info["members"]]
    assert ratio == pytest.approx([ratio[0]] * len(ratio))  # one shrink factor on bag weights
    with pytest.raises(ValueError, match="per-label weights"):
        build_ensemble(oof, oof, label_table, labels, list(x), "bagged", (), True, CLIP)


def test_ensemble_stage_runs_through_snakemake(tmp_path):
    import json

    template = _write_workflow_inputs(tmp_path, np.random.default_rng(0))
    allowed = ("--allowed-rules", "gather_model", "baseline", "ensemble", "submission")
    run_snakemake(tmp_path, "results/submission.csv", extra=(*allowed, "--quiet", "all"))
    sub = pd.read_csv(tmp_path / "results" / "submission.csv", dtype={"sample_id": str})
    assert list(sub.columns) == list(template.columns)
    assert list(sub["sample_id"]) == list(template["sample_id"])
    assert ((sub[["x", "y"]] > 0) & (sub[["x", "y"]] < 1)).all().all()
    scores = pd.read_csv(tmp_path / "results" / "ensemble" / "scores.csv")
    assert set(scores["member"]) == {"good", "weak", "prior", "conditional_prior",
                                     "benchmark_lr", "ensemble", "ensemble_nested"}
    selection = json.loads((tmp_path / "results" / "ensemble" / "selection.json").read_text())
    assert selection["members"][0] == "good"
    provenance = json.loads((tmp_path / "results" / "submission.csv.provenance.json").read_text())
    assert provenance["inputs"]["format"][0]["sha256"]
    # a changed selection re-runs the ensemble and the submission only
    config = (tmp_path / "config.yaml").read_text().replace("selection: greedy", "selection: all")
    (tmp_path / "config.yaml").write_text(config)
    planned = set(dry_run_jobs(tmp_path, "results/submission.csv", extra=allowed))
    assert planned == {"ensemble", "submission"}
