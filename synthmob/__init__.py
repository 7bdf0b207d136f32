"""synthmob: synthetic mobile-network and mobility data about people who do not exist.

>>> import synthmob
>>> run = synthmob.generate("tiny", out="runs/tiny")          # doctest: +SKIP
>>> run.table("stays")                                         # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from synthmob.audit import audit
from synthmob.errors import ConfigError, OutputError, SynthmobError
from synthmob.exports import export
from synthmob.insights import insights
from synthmob.pipeline import generate
from synthmob.run import Run
from synthmob.scenario import Scenario, load_scenario

try:
    __version__ = version("synthmob")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "ConfigError",
    "OutputError",
    "Run",
    "Scenario",
    "SynthmobError",
    "__version__",
    "audit",
    "export",
    "generate",
    "insights",
    "load_scenario",
]
