"""One registry shape (spectrovision.registry) for layouts, heads, 1-D nets, baselines and
tabular members: register by name, duplicates refused, an unknown name a ConfigError listing
the choices, and the schema's enums the registries' names exactly."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from spectrovision.config.schema import load_schema
from spectrovision.data.layouts import LAYOUTS, RunLayout, get_layout, group_columns
from spectrovision.data.sheet import run_columns
from spectrovision.ensemble.baselines import BASELINES
from spectrovision.ensemble.tabular import TABULAR_MEMBERS, GBMMember
from spectrovision.errors import ConfigError
from spectrovision.learn.models import HEADS
from spectrovision.learn.nets1d import NETS1D
from spectrovision.registry import Registry

SCHEMA = load_schema()["properties"]


class Alpha:
    pass


class Beta:
    pass


def test_register_by_call_or_decorator_and_get_in_registration_order():
    things: Registry[type] = Registry("thing", "things/kind", {"b": Beta})
    assert things.register("a", Alpha) is Alpha

    @things.register("c")
    class Gamma:
        pass

    assert things.names() == ["b", "a", "c"] and list(things) == ["b", "a", "c"]
    assert things.get("a") is Alpha and things.get("c") is Gamma
    assert "a" in things and "z" not in things and len(things) == 3


def test_a_name_registered_twice_is_refused_and_the_first_entry_kept():
    things: Registry[type] = Registry("thing", "things/kind", {"a": Alpha})
    with pytest.raises(ValueError, match="thing 'a' is registered twice .as Alpha and Beta"):
        things.register("a", Beta)
    with pytest.raises(ValueError, match="registered twice"):
        things.register("a")(Beta)
    assert things.get("a") is Alpha
    for registry, name in ((LAYOUTS, "mars2"), (HEADS, "pool"), (NETS1D, "conv1d"),
                           (BASELINES, "prior"), (TABULAR_MEMBERS, "lightgbm")):
        with pytest.raises(ValueError, match=f"'{name}' is registered twice"):
            registry.copy().register(name, Beta)


def test_an_unknown_name_is_a_config_error_naming_the_key_and_the_choices():
    things: Registry[type] = Registry("thing", "things/kind", {"a": Alpha, "b": Beta})
    with pytest.raises(ConfigError, match=r"config key 'things/kind': unknown thing 'z'\. "
                       r"Fix: choose one of a, b\."):
        things.get("z")
    with pytest.raises(ConfigError, match="config key 'models/m1/head': unknown head 'z'"):
        HEADS.get("z", "models/m1/head")
    with pytest.raises(ConfigError, match="'data/layout': unknown data layout 'mars3'"):
        get_layout("mars3")


def test_a_lazy_entry_is_imported_when_first_asked_for():
    things: Registry[type] = Registry("thing", "things/kind")
    things.register("later", f"{__name__}:Alpha")
    assert things.get("later") is Alpha
    with pytest.raises(ValueError, match="'module:attribute'"):
        things.register("bad", "no_colon")


def test_copy_leaves_the_original_as_it_was():
    copied = LAYOUTS.copy()
    copied.register("toy", RunLayout)
    assert "toy" in copied and "toy" not in LAYOUTS


# --- the schema's enums are the registries' names -----------------------------------------

def test_schema_enums_match_the_registries_exactly():
    assert SCHEMA["data"]["properties"]["layout"]["enum"] == LAYOUTS.names()
    model = load_schema()["$defs"]["model"]["properties"]
    assert model["head"]["enum"] == HEADS.names()
    assert SCHEMA["baselines"]["items"]["enum"] == BASELINES.names()
    # the 1-D nets are named in the backbone's description (any other name is a timm model)
    described = re.findall(r"\b(\w+1d)\b", model["backbone"]["description"])
    assert described == NETS1D.names()


def test_tabular_members_have_one_kind_lightgbm():
    assert TABULAR_MEMBERS.names() == ["lightgbm"]
    assert TABULAR_MEMBERS.get("lightgbm") is GBMMember


# --- a layout's knowledge lives in its class ----------------------------------------------

def data_block(layout: str) -> dict:
    return {"layout": layout, "columns": {"time": None, "temp": None, "mass": None,
                                          "intensity": None}}


def test_each_layout_names_its_columns_metadata_time_unit_and_group_columns():
    assert run_columns(data_block("mars1")).mass == "m/z"
    assert run_columns(data_block("mars1")).temp == "temp"
    for name in ("mars2", "generic", "instrument", "images"):
        assert (run_columns(data_block(name)).intensity, run_columns(data_block(name)).temp
                ) == ("intensity", None)
    assert {n: LAYOUTS.get(n).metadata for n in LAYOUTS} == {
        "mars2": ("derivatized",), "mars1": ("instrument_type",), "generic": (),
        "instrument": (), "images": ()}
    assert group_columns() == ("derivatized", "instrument_type")
    assert {n: LAYOUTS.get(n).time_unit for n in LAYOUTS} == {
        "mars2": "min", "mars1": "s", "generic": None, "instrument": "min", "images": None}


def test_render_samples_carry_the_flag_channel_or_zero():
    table = pd.DataFrame({"sample_id": ["a", "b"], "derivatized": [1, 0], "shard": [0, 0]})
    assert get_layout("mars2").render_samples(table) == [
        {"sample_id": "a", "derivatized": 1}, {"sample_id": "b", "derivatized": 0}]
    assert get_layout("mars1").render_samples(table.drop(columns="derivatized")) == [
        {"sample_id": "a", "derivatized": 0}, {"sample_id": "b", "derivatized": 0}]
