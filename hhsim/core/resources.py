"""Files shipped inside the package: the default model, world, experiment, intervention
defaults and price index."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from hhsim.core.parameters import read_toml

DATA = resources.files("hhsim") / "data"


def data_path(name: str) -> Path:
    """Path of a shipped data file."""
    return Path(str(DATA / name))


@cache
def _read(name: str) -> dict:
    return read_toml(data_path(name), "data file")


def default_model_tree() -> dict:
    """The default health model file, parsed (callers must not mutate it)."""
    return _read("default_model.toml")


def world_tree() -> dict:
    """The world (population) parameters, parsed (callers must not mutate it)."""
    return _read("world.toml")


def intervention_defaults(kind: str) -> dict:
    """The defaults file of an intervention type, parsed (callers must not mutate it)."""
    return _read(f"interventions/{kind}.toml")


def cost_index() -> dict[str, float]:
    """NHS Cost Inflation Index by financial year."""
    return {k: float(v) for k, v in _read("cost_inflation.toml")["index"].items() if k != "source"}


DEFAULT_EXPERIMENT = data_path("default_experiment.toml")
