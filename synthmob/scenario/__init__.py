"""Scenarios: YAML files parsed once into frozen, validated objects.

A scenario says which synthetic world to build, who lives in it and for how long to simulate them. Files are
read once, at the edge, by :func:`load_scenario`; everything downstream receives a frozen :class:`Scenario`.
Unknown keys are errors, and every error names the file, the field, the value and what would be valid.

Every default that stands for a fact about the world says where the number comes from.

The sections live one to a module (``world``, ``people``, ``operator``), the whole scenario in ``model``,
reading files in ``loading`` and the annotated YAML in ``document``; everything public is here.
"""

from synthmob.scenario.document import to_yaml
from synthmob.scenario.loading import load_scenario, preset_path, read_yaml
from synthmob.scenario.model import DEFAULT_PRESET, PRESETS, Scenario
from synthmob.scenario.operator import Events, Identities
from synthmob.scenario.people import AgeBand, Behaviour, Population
from synthmob.scenario.world import MAX_CELLS, Network, Origin, SettlementGroup, Settlements, Travel, World

__all__ = [
    "DEFAULT_PRESET",
    "MAX_CELLS",
    "PRESETS",
    "AgeBand",
    "Behaviour",
    "Events",
    "Identities",
    "Network",
    "Origin",
    "Population",
    "Scenario",
    "SettlementGroup",
    "Settlements",
    "Travel",
    "World",
    "load_scenario",
    "preset_path",
    "read_yaml",
    "to_yaml",
]
