"""hhsim: agent-based simulation of housing interventions and health outcomes.

The public names are imported when first used (PEP 562), so ``import hhsim`` and the
``hhsim`` command start without loading numpy, pandas or Mesa until they are needed.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same names for type checkers and the API reference (griffe); never run
    from hhsim.api import Results as Results
    from hhsim.api import load_results as load_results
    from hhsim.api import run_experiment as run_experiment
    from hhsim.experiment.plan import Plan as Plan
    from hhsim.experiment.plan import compile_plan as compile_plan
    from hhsim.experiment.plan import load_experiment as load_experiment
    from hhsim.experiment.schema import Experiment as Experiment
    from hhsim.model.simulation import HousingHealthModel as HousingHealthModel
    from hhsim.model.simulation import RunConfig as RunConfig

#: Public name -> the module that defines it.
_PUBLIC = {"Results": "hhsim.api", "load_results": "hhsim.api", "run_experiment": "hhsim.api",
           "Experiment": "hhsim.experiment.schema", "load_experiment": "hhsim.experiment.plan",
           "Plan": "hhsim.experiment.plan", "compile_plan": "hhsim.experiment.plan",
           "HousingHealthModel": "hhsim.model.simulation", "RunConfig": "hhsim.model.simulation"}
__all__ = sorted(_PUBLIC)



def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hhsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
