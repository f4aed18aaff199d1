"""Experiment files: the schema (``schema``), the ``[sensitivity]`` and ``[psa]`` sections
(``sections``), and ``plan``: an experiment compiled once into what every command runs."""
