"""A scenario as annotated YAML: every field, resolved, with what it means."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from synthmob.scenario.model import Scenario


# --- documenting -------------------------------------------------------------------------------------------
def to_yaml(scenario: Scenario) -> str:
    """The whole resolved scenario as YAML, each field followed by its description as a comment.

    The text loads back into an equal scenario with :func:`load_scenario`.
    """
    header = [f"# synthmob scenario {scenario.name!r}: every field, resolved, with what it means."]
    return "\n".join(header + _describe(scenario, 0)) + "\n"


def _describe(model: BaseModel, depth: int) -> list[str]:
    pad = "  " * depth
    lines = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            doc = (type(value).__doc__ or "").strip().splitlines()
            lines.append(f"{pad}{name}:" + (f"  # {doc[0]}" if doc else ""))
            lines += _describe(value, depth + 1)
            continue
        comment = f"  # {info.description}" if info.description else ""
        plain = _jsonable(value)
        if isinstance(plain, (list, dict)) and plain and any(isinstance(v, (list, dict)) for v in _values(plain)):
            block = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
            lines.append(f"{pad}{name}:{comment}")
            lines += [f"{pad}  {line}" for line in block.rstrip().splitlines()]
        else:
            text = yaml.safe_dump(plain, default_flow_style=True, allow_unicode=True, width=10**6).strip()
            text = text.removesuffix("...").strip()
            lines.append(f"{pad}{name}: {text}{comment}")
    return lines


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (dt.date, Path)):
        return str(value)
    return value


def _values(plain: list | dict) -> list:
    return list(plain.values()) if isinstance(plain, dict) else list(plain)
