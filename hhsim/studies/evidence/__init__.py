"""Published studies re-run inside hhsim (issue 17): study files and their simulation.

A study file describes a study (its design, grade, population, follow-up and source) and the
estimates it published; an hhsim experiment beside it replays the study's comparison.
``hhsim evidence`` simulates the study at the current parameters and prints each simulated
estimate, with its Monte-Carlo interval, beside the published one and its interval.

- ``hhsim.studies.evidence.study``: the file format (``load_study``);
- ``hhsim.studies.evidence.simulate``: running a study and judging each estimate
  (``simulate_study``, ``verdict``).
"""
