"""Cross-key checks of a validated config: what the JSON Schema cannot say on its own.

Each check raises :class:`~spectrovision.errors.ConfigError` naming the key and the fix;
the choices the workflow derives from the config (which model explain reads, which
representation a baseline or novelty reads) come from the same functions, so a check and
the value it guards cannot drift apart. Run once when the workflow is parsed
(:func:`check_config`), and reachable by unit tests without Snakemake.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..errors import ConfigError

ANALYSIS_STAGES = ("explain", "embed")  # stages that read one trained model x fold


def check_member_names(models: Sequence[str], baselines: Sequence[str],
                       tabular: Sequence[str], reserved: Collection[str]) -> None:
    """Models, baselines and tabular members share one namespace (the member tables), and
    none takes a ``reserved`` name: the ensemble's own rows in scores.csv
    (:data:`spectrovision.ensemble.rows.ENSEMBLE_ROWS`), passed in by the caller because
    config, below the ensemble in the data flow, does not import it."""
    clash = sorted(set(models) & (set(baselines) | set(reserved)))
    if clash:
        raise ConfigError(f"config key 'models': names {clash} clash with baseline names or "
                          f"the ensemble's rows {list(reserved)}. Fix: rename the models "
                          "under 'models:'.")
    clash = sorted(set(tabular) & (set(models) | set(baselines) | set(reserved)))
    if clash:
        raise ConfigError(f"config key 'tabular': names {clash} clash with model or baseline "
                          f"names or the ensemble's rows {list(reserved)}. Fix: rename "
                          "them under 'tabular:'.")


def chosen_representation(key: str, chosen: str | None, representations: Sequence[str]
                          ) -> str | None:
    """A representation named at ``key`` (null = the first by name; None when none exist)."""
    reps = sorted(representations)
    if chosen is not None and chosen not in reps:
        raise ConfigError(f"config key '{key}': '{chosen}' is not one of the representations "
                          f"{reps}. Fix: name a representation defined under "
                          "'representations:'.")
    return chosen or (reps[0] if reps else None)


def novelty_representation(cfg: Mapping[str, Any]) -> str | None:
    """The representation the novelty autoencoder reads."""
    return chosen_representation("novelty/representation", cfg["novelty"]["representation"],
                                 list(cfg["representations"]))


def analysis_model(cfg: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]],
                   stage: str) -> tuple[str | None, int]:
    """The (model, fold) that explain or embed reads; model None when there are no models.

    ``models`` are the resolved model settings by name. Only image-only models qualify:
    the analysis stages do not feed a metadata branch.
    """
    chosen, fold = cfg[stage]["model"], int(cfg[stage]["fold"])
    folds = list(range(cfg["folds"]["n_folds"]))
    if chosen is not None and chosen not in models:
        raise ConfigError(f"config key '{stage}/model': '{chosen}' is not one of the models "
                          f"{sorted(models)}. Fix: name a model defined under 'models:' "
                          "(null = the first by name).")
    if fold not in folds:
        raise ConfigError(f"config key '{stage}/fold': {fold} is not one of the folds "
                          f"{folds}. Fix: lower it below folds.n_folds.")
    image_only = [m for m in sorted(models) if not models[m]["metadata_columns"]]
    if chosen is not None and chosen not in image_only:
        raise ConfigError(f"config key '{stage}/model': '{chosen}' fuses metadata "
                          f"(metadata_columns), which {stage} does not feed. Fix: name an "
                          f"image-only model: {image_only}.")
    if cfg[stage]["enabled"] and models and not image_only:
        raise ConfigError(f"config key '{stage}/enabled': {stage} needs an image-only model "
                          f"but every model fuses metadata. Fix: add one or set "
                          f"{stage}.enabled: false.")
    return (chosen or (image_only[0] if image_only else None)), fold


METADATA_HEADS = ("pool", "time_avg")  # heads whose pooled features a metadata branch joins


def check_head_metadata(name: str, head: str, n_metadata: int) -> None:
    """The one statement that only :data:`METADATA_HEADS` fuse metadata (``sed`` keeps
    per-time logits, with no pooled features for a metadata branch to join): checked at
    parse time and again when a model is built (``learn.models.create_model``)."""
    if n_metadata and head not in METADATA_HEADS:
        raise ConfigError(f"config key 'models/{name}/metadata_columns': the {head} head takes "
                          "no metadata branch. Fix: use head "
                          f"{' or '.join(METADATA_HEADS)}, or drop the columns.")


def check_task(cfg: Mapping[str, Any]) -> None:
    """Ensemble settings that do not apply to the configured task, or to each other."""
    if cfg["task"] == "multiclass" and cfg["ensemble"]["per_label_weights"]:
        raise ConfigError("config key 'ensemble/per_label_weights': it fits one weight per "
                          "label and member, which does not apply to task multiclass (one "
                          "softmax over the classes). Fix: set it to false.")
    if cfg["ensemble"]["selection"] == "bagged" and cfg["ensemble"]["per_label_weights"]:
        raise ConfigError("config key 'ensemble/per_label_weights': selection bagged weighs "
                          "each member by its share of the bootstrap bags, and per-label "
                          "weights would replace those weights. Fix: set per_label_weights "
                          "to false, or use selection greedy.")


LOG_SPACE_AUGMENTS = ("mass_scale_sigma", "global_scale_sigma", "background_mix_quantiles")


def check_augment(cfg: Mapping[str, Any], name: str, model: Mapping[str, Any]) -> None:
    """A model's cached-render augmentations against its representation and the task: the
    log-space ones are exact on ``log: clipped_log10`` renders only (``resolve_model`` gives
    the model that representation's floor as ``render_log_floor``); sample mixing by max
    needs multilabel labels."""
    used = [k for k in LOG_SPACE_AUGMENTS if model[k]]
    rep = cfg["representations"].get(model["representation"])
    if used and rep is not None:
        if rep["log"] != "clipped_log10":
            raise ConfigError(
                f"config key 'models/{name}/{used[0]}': it is exact only on log: clipped_log10 "
                f"renders, but representation '{model['representation']}' has log: "
                f"{rep['log']}. Fix: render it with log: clipped_log10 or turn {used} off.")
    if cfg["task"] == "multiclass" and model["sample_mix_p"] and \
            model["sample_mix_mode"] == "max":
        raise ConfigError(
            f"config key 'models/{name}/sample_mix_mode': max combines labels by their union, "
            "which a multiclass task cannot hold. Fix: use sample_mix_mode mean.")


def check_weight_averaging(name: str, model: Mapping[str, Any]) -> None:
    """``average_last_epochs`` (k > 1) keeps the average of the last k epochs' weights: it
    needs ``keep_weights: last`` (best_val keeps one epoch's) and at most ``epochs``."""
    k, key = int(model["average_last_epochs"]), f"models/{name}/average_last_epochs"
    if k <= 1:
        return
    if model["keep_weights"] != "last":
        raise ConfigError(
            f"config key '{key}': it keeps the average of the last {k} epochs' weights, but "
            f"keep_weights: {model['keep_weights']} keeps one epoch's. Fix: set keep_weights: "
            "last, or average_last_epochs: 0.")
    if k > int(model["epochs"]):
        raise ConfigError(
            f"config key '{key}': {k} epochs to average, but the model trains "
            f"{model['epochs']}. Fix: at most epochs ({model['epochs']}).")


def check_config(cfg: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]], *,
                 reserved: Collection[str]) -> None:
    """Every cross-key check of a validated config (``models``: resolved settings;
    ``reserved``: the member names the ensemble's rows take, see
    :func:`check_member_names`)."""
    check_member_names(list(models), list(cfg["baselines"]), list(cfg["tabular"]), reserved)
    novelty_representation(cfg)
    for stage in ANALYSIS_STAGES:
        analysis_model(cfg, models, stage)
    check_task(cfg)
    for name, model in models.items():
        check_augment(cfg, name, model)
        check_weight_averaging(name, model)
