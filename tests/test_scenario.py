"""Scenario loading: presets, overrides, sources, immutability, and one-line errors for every bad input."""

from __future__ import annotations

import re

import copy
import datetime as dt
from pathlib import Path

import pydantic
import pytest
import yaml

from synthmob import ConfigError, Scenario, SynthmobError, load_scenario
from synthmob.schema import PERSONAS
from synthmob.scenario import AgeBand, Behaviour, Network, Origin, SettlementGroup, Travel, World


def fields(model) -> str:
    """How an unknown-key message lists the valid fields of ``model``."""
    return ", ".join(sorted(model.model_fields))


TOP_LEVEL_FIELDS = fields(Scenario)
VALID_PERSONAS = str([p for p in PERSONAS if p != "visitor"])
PYRAMID_BANDS = str([band.age_band for band in load_scenario("tiny").population.pyramid])


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(config, **kwargs) -> ConfigError:
    """Load ``config`` expecting a ConfigError; check the message is one line and return the error."""
    with pytest.raises(ConfigError) as info:
        load_scenario(config, **kwargs)
    error = info.value
    message = str(error)
    assert isinstance(error, SynthmobError) and error.exit_code == 2
    assert message and "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message
    return error


def tiny_personas() -> dict:
    return copy.deepcopy(load_scenario("tiny").population.personas)


# --- presets -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("tiny", {"seed": 1, "subscribers": 100, "days": 1, "shard_size": 50, "width_km": 4.0, "kinds": ("town",)}),
        ("city", {"seed": 2, "subscribers": 10_000, "days": 7, "shard_size": 1000, "width_km": 25.0, "kinds": ("city", "village")}),
        ("region", {"seed": 3, "subscribers": 50_000, "days": 7, "shard_size": 1000, "width_km": 150.0, "kinds": ("city", "town", "village")}),
    ],
)
def test_preset_loads_with_its_values(preset, expected):
    scenario = load_scenario(preset)
    assert isinstance(scenario, Scenario)
    assert scenario.name == preset
    assert scenario.seed == expected["seed"]
    assert scenario.subscribers == expected["subscribers"]
    assert scenario.days == expected["days"]
    assert scenario.shard_size == expected["shard_size"]
    assert scenario.start == dt.date(2026, 3, 23)
    assert scenario.timezone == "Europe/Berlin"
    assert scenario.world.width_km == expected["width_km"] == scenario.world.height_km
    assert tuple(g.kind for g in scenario.world.settlements.groups) == expected["kinds"]
    assert scenario.output_folder == Path("runs") / preset


def test_preset_fills_unspecified_sections_with_defaults_and_keeps_given_nested_values():
    tiny = load_scenario("tiny")
    assert tiny.world.network.min_site_spacing_m == 350
    assert tiny.world.network.max_site_spacing_m == 2000
    assert tiny.world.network.cells_per_area == 16
    assert tiny.world.network.urban_density_per_km2 == 300.0  # not in tiny.yaml: the default
    assert tiny.world.travel == Travel()
    assert tiny.behaviour == Behaviour()
    assert tiny.n_shards == 2


# --- overrides ---------------------------------------------------------------------------------------------
def test_overrides_replace_top_level_fields(tmp_path):
    out = tmp_path / "somewhere"
    scenario = load_scenario(
        "tiny", overrides={"seed": 42, "subscribers": 7, "days": 3, "start": "2026-04-01", "out": str(out)}
    )
    assert scenario.seed == 42
    assert scenario.subscribers == 7
    assert scenario.days == 3
    assert scenario.start == dt.date(2026, 4, 1)
    assert scenario.out == out and scenario.output_folder == out
    # everything else still comes from the preset
    assert scenario.name == "tiny" and scenario.shard_size == 50 and scenario.world.width_km == 4


def test_override_values_given_as_strings_are_parsed():
    scenario = load_scenario("tiny", overrides={"seed": "9", "days": "2", "subscribers": "10"})
    assert (scenario.seed, scenario.days, scenario.subscribers) == (9, 2, 10)


def test_none_overrides_are_ignored():
    assert load_scenario("tiny", overrides={"seed": None, "days": None, "out": None}) == load_scenario("tiny")


def test_nested_mapping_override_merges_into_the_section():
    scenario = load_scenario("tiny", overrides={"world": {"network": {"cells_per_area": 8}, "height_km": 5}})
    assert scenario.world.network.cells_per_area == 8
    # siblings given by tiny.yaml survive the merge, at every depth
    assert scenario.world.network.min_site_spacing_m == 350
    assert scenario.world.network.max_site_spacing_m == 2000
    assert scenario.world.network.residents_per_site == 1400
    assert scenario.world.width_km == 4 and scenario.world.height_km == 5
    assert scenario.world.settlements.largest_population == 40_000


def test_overrides_do_not_mutate_the_given_mapping():
    config = {"name": "m", "world": {"width_km": 10, "network": {"cells_per_area": 5}}}
    overrides = {"world": {"network": {"cells_per_area": 6}}}
    before = copy.deepcopy((config, overrides))
    scenario = load_scenario(config, overrides=overrides)
    assert scenario.world.network.cells_per_area == 6 and scenario.world.width_km == 10
    assert (config, overrides) == before


# --- sources -----------------------------------------------------------------------------------------------
def test_load_from_mapping_uses_defaults_for_the_rest():
    scenario = load_scenario({"name": "m", "subscribers": 5, "world": {"width_km": 10}})
    assert scenario.name == "m" and scenario.subscribers == 5
    assert scenario.world.width_km == 10
    assert scenario.world.height_km == 150.0  # default
    assert scenario.days == 7 and scenario.seed == 0  # defaults


def test_load_from_yaml_path_as_path_and_as_str(tmp_path):
    path = write(
        tmp_path,
        "name: mine\nseed: 11\nsubscribers: 20\ndays: 2\nstart: 2026-06-01\ntimezone: UTC\n"
        "world:\n  width_km: 6\n  network:\n    cells_per_area: 9\n",
    )
    from_path = load_scenario(path)
    from_str = load_scenario(str(path))
    assert from_path == from_str
    assert from_path.name == "mine" and from_path.seed == 11 and from_path.subscribers == 20
    assert from_path.start == dt.date(2026, 6, 1) and from_path.timezone == "UTC"
    assert from_path.world.width_km == 6 and from_path.world.network.cells_per_area == 9


def test_yaml_file_and_equal_mapping_give_equal_scenarios(tmp_path):
    data = {"name": "same", "seed": 4, "world": {"travel": {"walk_kmh": 5.0}}}
    path = write(tmp_path, yaml.safe_dump(data))
    assert load_scenario(path) == load_scenario(data)


def test_empty_yaml_file_gives_the_default_scenario(tmp_path):
    assert load_scenario(write(tmp_path, "# nothing but a comment\n")) == Scenario()


def test_load_from_scenario_copies_and_applies_overrides():
    tiny = load_scenario("tiny")
    other = load_scenario(tiny, overrides={"seed": 99})
    assert other.seed == 99 and tiny.seed == 1
    assert other.model_copy(update={"seed": 1}) == tiny


def test_preset_name_wins_over_a_folder_of_the_same_name(tmp_path, monkeypatch):
    """`synthmob generate tiny --out tiny` leaves a folder ./tiny; loading the preset must still work."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "manifest.json").write_text("{}")
    assert load_scenario("tiny").subscribers == 100


# --- frozen ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("get_model", "field", "value"),
    [
        (lambda s: s, "seed", 5),
        (lambda s: s, "out", Path("x")),
        (lambda s: s.world, "width_km", 9.0),
        (lambda s: s.world.network, "min_site_spacing_m", 1.0),
        (lambda s: s.behaviour, "work_hours", 1.0),
    ],
)
def test_scenario_is_frozen(get_model, field, value):
    scenario = load_scenario("tiny")
    model = get_model(scenario)
    before = getattr(model, field)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        setattr(model, field, value)
    assert getattr(model, field) == before
    assert scenario == load_scenario("tiny")


# --- bad input: the file itself ----------------------------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    error = config_error(path)
    assert str(error) == f"{path}: no such file; give a YAML file or a preset name (tiny, city, region)"
    assert error.source == str(path) and error.field is None


def test_unknown_preset_name_is_reported_as_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error = config_error("tinyy")
    assert str(error) == "tinyy: no such file; give a YAML file or a preset name (tiny, city, region)"


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    error = config_error(folder)
    assert str(error) == f"{folder}: is a folder; give a YAML scenario file"


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: Köln\n".encode("latin-1"))
    message = str(config_error(path))
    assert message.startswith(f"{path}: cannot be read (")
    assert message.endswith("give a readable UTF-8 YAML file")


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("name: x\n  seed: 1\n", "line 2, column 7", "mapping values are not allowed here"),
        ("name: x\nseed: [1, 2\n", "line 3, column 1", "expected ',' or ']', but got '<stream end>'"),
        ("name: x\n\tseed: 1\n", "line 2, column 1", "found character '\\t' that cannot start any token"),
        ("name: x\nworld:\n  width_km: 3\n   height_km: 4\n", "line 4, column 13", "mapping values are not allowed here"),
        ('name: "abc\n', "line 2, column 1", "found unexpected end of stream"),
        ("name: &a x\nseed: *b\n", "line 2, column 7", "found undefined alias 'b'"),
    ],
    ids=["bad-indent", "unclosed-list", "tab", "nested-indent", "unclosed-quote", "undefined-alias"],
)
def test_invalid_yaml_names_line_and_column(tmp_path, text, where, problem):
    path = write(tmp_path, text)
    error = config_error(path)
    assert str(error) == f"{path}: {where}: invalid YAML ({problem}); write 'key: value' pairs"
    assert error.source == str(path) and error.field == where


def test_unsafe_yaml_tag_is_refused(tmp_path):
    path = write(tmp_path, "!!python/object/apply:os.system ['echo hi']\n")
    message = str(config_error(path))
    assert message.startswith(f"{path}: line 1, column 1: invalid YAML (could not determine a constructor")


@pytest.mark.parametrize(
    ("text", "shown"),
    [("- a\n- b\n", "got ['a', 'b']"), ("just a sentence\n", "got 'just a sentence'"), ("42\n", "got 42")],
    ids=["list", "string", "number"],
)
def test_top_level_must_be_a_mapping(tmp_path, text, shown):
    path = write(tmp_path, text)
    error = config_error(path)
    assert str(error) == f"{path}: {shown}; a scenario file must be a mapping of 'key: value' pairs"


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        ("name: x\nseed: 1\nseed: 2\n", "line 3, column 1", "seed"),
        ("world:\n  width_km: 3\n  height_km: 3\n  width_km: 4\n", "line 4, column 3", "width_km"),
    ],
    ids=["top-level", "nested"],
)
def test_duplicate_key(tmp_path, text, where, key):
    path = write(tmp_path, text)
    error = config_error(path)
    assert str(error) == (
        f"{path}: {where}: invalid YAML (key '{key}' appears twice; give each key once); write 'key: value' pairs"
    )


def test_unhashable_key_is_a_config_error(tmp_path):
    """A sequence used as a key (``[a, b]: 1``) is invalid YAML for a scenario; it must not crash the loader."""
    path = write(tmp_path, "name: x\n[a, b]: 1\n")
    message = str(config_error(path))
    assert message.startswith(f"{path}: line 2, column 1: invalid YAML (")


# --- bad input: fields -------------------------------------------------------------------------------------
def test_unknown_top_level_key_lists_valid_fields(tmp_path):
    path = write(tmp_path, "name: x\nsubscriber: 5\n")
    error = config_error(path)
    assert str(error) == f"{path}: subscriber: unknown field; valid fields here: {TOP_LEVEL_FIELDS}"
    assert error.field == "subscriber"
    for name in ("subscribers", "days", "seed", "start", "world", "population", "behaviour"):
        assert name in TOP_LEVEL_FIELDS.split(", ")


@pytest.mark.parametrize(
    ("text", "field", "valid"),
    [
        ("world:\n  network:\n    min_spacing: 5\n", "world.network.min_spacing", fields(Network)),
        (
            "world:\n  widht_km: 5\n",
            "world.widht_km",
            fields(World),
        ),
        ("world:\n  origin:\n    alt: 1\n", "world.origin.alt", fields(Origin)),
        (
            "world:\n  settlements:\n    groups:\n      - {kind: city, count: 1, from_rank: 1, size: 2}\n",
            "world.settlements.groups.0.size",
            fields(SettlementGroup),
        ),
        (
            "population:\n  pyramid:\n    - {age_band: 15-24, female: 1, male: 1, other: 2}\n",
            "population.pyramid.0.other",
            fields(AgeBand),
        ),
    ],
    ids=["network", "world", "origin", "settlement-group", "pyramid-band"],
)
def test_unknown_nested_key_lists_valid_fields_of_its_section(tmp_path, text, field, valid):
    path = write(tmp_path, text)
    error = config_error(path)
    assert str(error) == f"{path}: {field}: unknown field; valid fields here: {valid}"
    assert error.field == field


@pytest.mark.parametrize(
    ("text", "field", "shown", "valid"),
    [
        ("days: 0\n", "days", "got 0", "greater than or equal to 1"),
        ("days: 367\n", "days", "got 367", "less than or equal to 366"),
        ("subscribers: 0\n", "subscribers", "got 0", "greater than or equal to 1"),
        ("seed: -1\n", "seed", "got -1", "greater than or equal to 0"),
        ("seed: 99999999999999999999999\n", "seed", "got 99999999999999999999999", "less than or equal to 9223372036854775807"),
        ("shard_size: 0\n", "shard_size", "got 0", "greater than or equal to 1"),
        ("world:\n  width_km: 0.5\n", "world.width_km", "got 0.5", "greater than 0.5"),
        ("world:\n  travel:\n    walk_share: 1.5\n", "world.travel.walk_share", "got 1.5", "less than or equal to 1"),
        ("world:\n  origin:\n    lat: 85\n", "world.origin.lat", "got 85", "less than or equal to 80"),
        ("behaviour:\n  work_start_h: 24\n", "behaviour.work_start_h", "got 24", "less than 24"),
        ("population:\n  visitor_share: -0.1\n", "population.visitor_share", "got -0.1", "greater than or equal to 0"),
        ("events:\n  neighbour_decay: 0\n", "events.neighbour_decay", "got 0", "greater than 0"),
        ("events:\n  neighbour_decay: 1.5\n", "events.neighbour_decay", "got 1.5", "less than or equal to 1"),
        ("events:\n  neighbour_dwell_min: -5\n", "events.neighbour_dwell_min", "got -5", "greater than 0"),
        ("events:\n  neighbour_probability: 2\n", "events.neighbour_probability", "got 2", "less than or equal to 1"),
    ],
)
def test_out_of_range_number(tmp_path, text, field, shown, valid):
    path = write(tmp_path, text)
    error = config_error(path)
    assert str(error) == f"{path}: {field}: {shown}; input should be {valid}"
    assert error.source == str(path) and error.field == field


@pytest.mark.parametrize(
    ("text", "field", "shown", "valid"),
    [
        ("subscribers: lots\n", "subscribers", "got 'lots'", "input should be a valid integer"),
        ("days: 1.5\n", "days", "got 1.5", "input should be a valid integer"),
        ("world:\n  width_km: wide\n", "world.width_km", "got 'wide'", "input should be a valid number"),
        ("timezone: 5\n", "timezone", "got 5", "input should be a valid string"),
        ("world: 5\n", "world", "got 5", "input should be a valid dictionary or instance of World"),
        ("world:\n  network:\n    radio_mix: {WiFi: 1.0}\n", "world.network.radio_mix.WiFi.[key]", "got 'WiFi'",
         "input should be 'GSM', 'UMTS', 'LTE' or 'NR'"),
        ("world:\n  settlements:\n    groups:\n      - {kind: metropolis, count: 1, from_rank: 1}\n",
         "world.settlements.groups.0.kind", "got 'metropolis'", "input should be 'city', 'town' or 'village'"),
        ("population:\n  work_model: teleport\n", "population.work_model", "got 'teleport'",
         ("input should be ", "'radiation'", "'gravity'")),
        ("name: two words\n", "name", "got 'two words'", "string should match pattern"),
    ],
)
def test_wrong_type(tmp_path, text, field, shown, valid):
    path = write(tmp_path, text)
    message = str(config_error(path))
    assert message.startswith(f"{path}: {field}: {shown}; ")
    for piece in (valid,) if isinstance(valid, str) else valid:
        assert piece in message.split("; ", 1)[1]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("tomorrow", "got 'tomorrow'"),
        ("'2026-02-30'", "got '2026-02-30'"),
        ("2026-03-23 10:00:00", "got '2026-03-23 10:00:00'"),  # YAML dates stay text until validated
    ],
    ids=["word", "quoted-impossible-day", "with-time"],
)
def test_bad_date(tmp_path, value, shown):
    path = write(tmp_path, f"start: {value}\n")
    error = config_error(path)
    assert str(error).startswith(f"{path}: start: {shown}; ")
    assert "date" in str(error).split("; ", 1)[1]


@pytest.mark.parametrize("value", ["2026-02-30", "2026-13-01"], ids=["february-30", "month-13"])
def test_impossible_unquoted_yaml_date(tmp_path, value):
    """An unquoted impossible date is reported against its field, with the value as written."""
    path = write(tmp_path, f"name: x\nstart: {value}\n")
    message = str(config_error(path))
    assert message.startswith(f"{path}: start: got '{value}'; ")
    assert "date" in message.split("; ", 1)[1]


def test_unknown_time_zone(tmp_path):
    path = write(tmp_path, "timezone: Mars/Olympus_Mons\n")
    error = config_error(path)
    assert str(error) == (
        f"{path}: timezone: got 'Mars/Olympus_Mons'; not a known IANA time zone; e.g. Europe/Berlin, UTC, America/New_York"
    )


def test_personas_naming_an_unknown_persona(tmp_path):
    personas = tiny_personas()
    personas["65+"] = {"home_based": 0.9, "pirate": 0.1}
    path = write(tmp_path, yaml.safe_dump({"population": {"personas": personas}}))
    error = config_error(path)
    assert str(error) == (
        f"{path}: population: personas.65+ names unknown persona(s) ['pirate']; valid: {VALID_PERSONAS}"
    )


def test_personas_naming_an_age_band_not_in_the_pyramid(tmp_path):
    personas = tiny_personas()
    personas["99+"] = {"home_based": 1.0}
    path = write(tmp_path, yaml.safe_dump({"population": {"personas": personas}}))
    error = config_error(path)
    assert str(error) == (
        f"{path}: population: personas names age band(s) ['99+'] not in the pyramid {PYRAMID_BANDS}"
    )


def test_personas_missing_an_age_band_of_the_pyramid(tmp_path):
    personas = tiny_personas()
    del personas["25-34"]
    path = write(tmp_path, yaml.safe_dump({"population": {"personas": personas}}))
    error = config_error(path)
    assert str(error) == (
        f"{path}: population: personas has no weights for age band(s) ['25-34']; give weights for each of {PYRAMID_BANDS}"
    )


@pytest.mark.parametrize(("low", "high"), [(3000, 2000), (500, 500)], ids=["above", "equal"])
def test_min_site_spacing_must_be_below_max(tmp_path, low, high):
    path = write(tmp_path, f"world:\n  network:\n    min_site_spacing_m: {low}\n    max_site_spacing_m: {high}\n")
    error = config_error(path)
    assert str(error) == (
        f"{path}: world.network: min_site_spacing_m ({float(low)}) must be below max_site_spacing_m ({float(high)})"
    )


def test_error_from_a_mapping_names_the_mapping():
    error = config_error({"days": 0})
    assert str(error) == "mapping: days: got 0; input should be greater than or equal to 1"


# --- bad overrides -----------------------------------------------------------------------------------------
def test_bad_override_from_the_api_names_the_argument():
    error = config_error("tiny", overrides={"days": 0})
    assert str(error) == "argument: days: got 0; input should be greater than or equal to 1"


def test_bad_override_from_the_command_line_names_the_flag():
    error = config_error("tiny", overrides={"days": "abc"}, override_names={"days": "--days"})
    assert str(error).startswith("command line: --days: got 'abc'; input should be a valid integer")
    assert error.source == "command line" and error.field == "--days" and error.value == "abc"


def test_unknown_override_lists_valid_fields():
    error = config_error("tiny", overrides={"subscriber": 5})
    assert str(error) == f"argument: subscriber: unknown field; valid fields here: {TOP_LEVEL_FIELDS}"


def test_a_bad_value_in_the_file_is_blamed_on_the_file_even_with_overrides(tmp_path):
    path = write(tmp_path, "days: 0\n")
    error = config_error(path, overrides={"seed": 3})
    assert str(error).startswith(f"{path}: days: got 0; ")


# --- every message is one line -----------------------------------------------------------------------------
ONE_LINE_CASES = {
    "invalid-yaml": "a: [\n\n\n",
    "control-character": "name: \x07\n",
    "list": "- a\n- b\n- c\n",
    "long-list": "- " + "\n- ".join(["x" * 30] * 20) + "\n",
    "duplicate": "a: 1\na: 2\n",
    "unknown": "nope: 1\n",
    "range": "days: 0\n",
    "type": "subscribers: lots\n",
    "multiline-value": "subscribers: |\n  many\n  lines\n  here\n",
    "date": "start: tomorrow\n",
    "timezone": "timezone: Nowhere/Special\n",
    "spacing": "world:\n  network:\n    min_site_spacing_m: 9000\n",
    "groups-empty": "world:\n  settlements:\n    groups: []\n",
    "personas": "population:\n  personas: {}\n",
    "out": "out: [1, 2]\n",
}


@pytest.mark.parametrize("text", ONE_LINE_CASES.values(), ids=ONE_LINE_CASES.keys())
def test_message_is_exactly_one_short_line(tmp_path, text):
    path = write(tmp_path, text)
    error = config_error(path)  # asserts no newline
    message = str(error)
    assert message.startswith(f"{path}: ")
    assert len(message) > len(f"{path}: ") + 10  # says something after the file name
    assert len(message) < len(str(path)) + 400


# --- documentation ------------------------------------------------------------------------------------------
def _models(model=None, seen=None):
    from pydantic import BaseModel

    model = model or Scenario
    seen = seen if seen is not None else set()
    if model in seen:
        return seen
    seen.add(model)
    for info in model.model_fields.values():
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)
    return seen


def test_every_field_is_documented():
    """Every field has a description (or, for a section, a docstring) that --show prints beside its default."""
    from pydantic import BaseModel

    for model in _models():
        assert (model.__doc__ or "").strip(), model.__name__
        for name, info in model.model_fields.items():
            section = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            if model.__name__ == "AgeBand" and name in ("female", "male"):
                continue  # documented by the AgeBand docstring
            assert section or info.description, f"{model.__name__}.{name} has no description"


def test_show_comments_every_field_and_loads_back(tmp_path):
    from synthmob.scenario import to_yaml

    scenario = load_scenario("region")
    text = to_yaml(scenario)
    fields = {name for model in _models() for name in model.model_fields}
    keyed = [line for line in text.splitlines() if re.match(r"^\s*(\w+):", line)]
    field_lines = [line for line in keyed if re.match(r"^\s*(\w+):", line).group(1) in fields]
    in_lists = {"SettlementGroup", "AgeBand"}  # their fields are written inline, one list item a line
    assert len(field_lines) == sum(len(m.model_fields) for m in _models() if m.__name__ not in in_lists)
    assert all("  # " in line for line in field_lines), [line for line in field_lines if "  # " not in line][:3]
    path = tmp_path / "full.yaml"
    path.write_text(text)
    assert load_scenario(path) == scenario


def test_a_config_we_may_not_read_is_a_config_error(tmp_path):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "s.yaml").write_text("name: x\n")
    locked.chmod(0o000)
    try:
        if os.geteuid() == 0:
            os.seteuid(65534)
        try:
            with pytest.raises(ConfigError) as info:
                load_scenario(locked / "s.yaml")
        finally:
            if os.geteuid() != 0 and os.getuid() == 0:
                os.seteuid(0)
    finally:
        locked.chmod(0o700)
    assert str(info.value).startswith(f"{locked / 's.yaml'}: ")
    assert "Permission denied" in str(info.value)


def test_a_world_too_big_to_route_is_refused_with_what_to_change(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nworld:\n  width_km: 600\n  height_km: 600\n")
    message = str(config_error(path))
    assert message.startswith(f"{path}: world: this world would have about ")
    assert "more than the 12,000" in message and "residents_per_site" in message


def test_infinite_values_are_refused(tmp_path):
    path = tmp_path / "inf.yaml"
    path.write_text("world:\n  travel:\n    car_urban_kmh: .inf\n")
    message = str(config_error(path))
    assert message.startswith(f"{path}: world.travel.car_urban_kmh: got inf; ")
