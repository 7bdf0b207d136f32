"""The scenario: everything a run needs, validated and frozen."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

from pydantic import Field, field_validator

from synthmob.scenario.base import _Frozen
from synthmob.scenario.operator import Events, Identities
from synthmob.scenario.people import Behaviour, Population
from synthmob.scenario.world import World

PRESETS = ("tiny", "city", "region")
DEFAULT_PRESET = "region"


# --- scenario ----------------------------------------------------------------------------------------------
class Scenario(_Frozen):
    """Everything a run needs, validated and frozen."""

    name: str = Field(
        "scenario", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="names the default output folder"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="root seed; the same seed gives the same output")
    subscribers: int = Field(1000, ge=1, le=100_000_000, description="number of synthetic subscribers")
    days: int = Field(7, ge=1, le=366, description="number of local days simulated")
    start: dt.date = Field(dt.date(2026, 3, 23), description="first local day (default: a Monday)")
    timezone: str = Field("Europe/Berlin", description="IANA time zone people live by")
    shard_size: int = Field(1000, ge=1, le=1_000_000, description="subscribers per shard (fixed, not per worker)")
    out: Path | None = Field(None, description="output folder (default runs/<name>)")
    world: World = World()
    population: Population = Population()
    behaviour: Behaviour = Behaviour()
    identities: Identities = Identities()
    events: Events = Events()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known IANA time zone; e.g. Europe/Berlin, UTC, America/New_York") from None
        return value

    @property
    def output_folder(self) -> Path:
        return self.out if self.out is not None else Path("runs") / self.name

    @property
    def n_shards(self) -> int:
        return -(-self.subscribers // self.shard_size)
