"""Reading scenarios: YAML files, presets, mappings and overrides, with one-line errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from synthmob.errors import MISSING, ConfigError
from synthmob.scenario.model import PRESETS, Scenario


# --- loading -----------------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found unhashable key; a key must be a plain name", key_node.start_mark
            ) from None
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice; give each key once", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay strings until pydantic parses them, so an impossible date (2026-02-30) is reported against its
# field like any other bad value, instead of failing inside the YAML parser.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def preset_path(name: str) -> Path | None:
    """The YAML file of a shipped preset, or None if ``name`` is not one."""
    if name not in PRESETS:
        return None
    package = Path(__file__).resolve().parent.parent  # synthmob/
    for folder in (package / "configs", package.parent / "configs"):  # an installed wheel; a checkout
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    return None


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a scenario file into a mapping, turning every kind of failure into a :class:`ConfigError`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            source, None, MISSING, f"no such file; give a YAML file or a preset name ({', '.join(PRESETS)})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(source, None, MISSING, "is a folder; give a YAML scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, None, MISSING, f"cannot be read ({exc}); give a readable UTF-8 YAML file") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(source, where, MISSING, f"invalid YAML ({problem}); write 'key: value' pairs") from None
    except ValueError as exc:  # pragma: no cover - PyYAML's own conversions; dates no longer get here
        raise ConfigError(source, None, MISSING, f"invalid YAML value ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, None, data, "a scenario file must be a mapping of 'key: value' pairs")
    return data


def load_scenario(
    config: "str | Path | Mapping[str, Any] | Scenario",
    *,
    overrides: Mapping[str, Any] | None = None,
    override_names: Mapping[str, str] | None = None,
) -> Scenario:
    """Build a :class:`Scenario` from a preset name, a YAML path, a mapping or a scenario, plus overrides.

    Parameters
    ----------
    config
        ``"tiny"``, ``"city"`` or ``"region"``; a path to a YAML file; a mapping of the same keys; or a
        :class:`Scenario` to copy.
    overrides
        Top-level fields to replace (``seed``, ``subscribers``, ``days``, ``start``, ``out`` ...); a mapping
        value for a section (``world``) is merged into it. ``None`` values are ignored.
    override_names
        How to name an overridden field in an error (the command line passes ``{"days": "--days"}``).

    Raises
    ------
    ConfigError
        One line naming the file, the field, the value found and what would be valid.

    Examples
    --------
    >>> s = load_scenario("tiny", overrides={"seed": 7})
    >>> s.seed, s.name
    (7, 'tiny')
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if isinstance(config, Scenario):
        source, data = "scenario", config.model_dump(mode="python")
    elif isinstance(config, Mapping):
        source, data = "mapping", dict(config)
    else:
        path = Path(config)
        try:
            is_file = path.is_file()
        except OSError as exc:
            raise ConfigError(str(path), None, MISSING, f"cannot be read ({exc.strerror}); give a readable YAML file") from None
        preset = preset_path(str(config)) if not is_file else None
        if preset is not None:
            path = preset
        source, data = str(path), read_yaml(path)
    merged = _merge(data, overrides)
    try:
        return Scenario.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, source, overrides, override_names or {}) from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _given(overrides: Mapping[str, Any], loc: tuple) -> bool:
    """Whether the value at ``loc`` came from the overrides rather than the file."""
    node: Any = overrides
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return not isinstance(node, Mapping)  # a whole section or list was given
    return True


def _config_error(
    exc: ValidationError, source: str, overrides: Mapping[str, Any], names: Mapping[str, str]
) -> ConfigError:
    """Turn pydantic's first error into a one-line :class:`ConfigError`."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or None
    if loc and loc[0] in overrides and _given(overrides, loc):
        source = "command line" if names else "argument"
        field = names.get(str(loc[0]), field) if len(loc) == 1 else field
    value = err.get("input", MISSING)
    if err["type"] == "extra_forbidden":
        valid = _fields_at(loc[:-1])
        return ConfigError(source, field, MISSING, f"unknown field; valid fields here: {', '.join(valid)}")
    if err["type"] == "missing":
        return ConfigError(source, field, MISSING, "is required")
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
        value = MISSING if isinstance(value, Mapping) else value
    message = message[0].lower() + message[1:]
    return ConfigError(source, field, value, message)


def _fields_at(loc: tuple) -> list[str]:
    """Names of the fields of the model found at ``loc`` inside a scenario."""
    model: Any = Scenario
    for part in loc:
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            break
        annotation = info.annotation
        model = next(
            (a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)),
            annotation,
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return sorted(getattr(model, "model_fields", {}))
