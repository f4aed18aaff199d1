"""hhsim: agent-based simulation of housing interventions and health outcomes."""

from hhsim.api import Results, load_results, run_experiment
from hhsim.experiment import Experiment, load_experiment
from hhsim.model import HousingHealthModel, RunConfig

__all__ = ["Experiment", "HousingHealthModel", "Results", "RunConfig", "load_experiment",
           "load_results", "run_experiment"]
