"""Shared helpers: build and run small models quickly."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhsim.core.parameters import read_toml
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.simulation import HousingHealthModel, RunConfig

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(__file__).resolve().parent / "models"


def config(model_tree: dict | None = None, **kw) -> RunConfig:
    """A RunConfig for a small social-housing population (overridable by keyword)."""
    base = dict(model_tree=model_tree or default_model_tree(), world_tree=world_tree(),
                tenants=2000, tenure={"social_rented": 1.0}, steps=24, seed=1)
    base.update(kw)
    return RunConfig(**base)


def run(model_tree: dict | None = None, **kw) -> HousingHealthModel:
    m = HousingHealthModel(config(model_tree, **kw))
    m.run()
    return m


def model_file(name: str) -> dict:
    return read_toml(MODELS / name)


@pytest.fixture(scope="session")
def default_run() -> HousingHealthModel:
    """One 3-year run of 5,000 social tenants with the default model (shared, read-only)."""
    return run(tenants=5000, steps=36, seed=3)


def everywhere(monkeypatch, function, replacement) -> None:
    """Replace ``function`` wherever an hhsim module holds it by name (a spy or a stand-in
    that also reaches modules that imported it with ``from ... import``)."""
    import sys

    for name, module in list(sys.modules.items()):
        if name.startswith("hhsim") and getattr(module, function.__name__, None) is function:
            monkeypatch.setattr(module, function.__name__, replacement)
