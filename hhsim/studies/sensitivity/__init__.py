"""Global sensitivity analysis with SALib, run through the batch layer (docs/sensitivity.md).

- ``section``: the ``[sensitivity]`` section of an experiment file, resolved and checked;
- ``design``: SALib samples on the unit hypercube, turned into parameter points;
- ``analysis``: SALib's indices, the plain-language ranking, the Monte-Carlo noise check;
- ``plots``: ``plot_sensitivity(outdir)``, the plots of an output folder;
- ``run``: ``run_sensitivity``, the whole analysis (``hhsim sensitivity``).

The package imports nothing on its own: ``hhsim.experiment.schema`` uses ``section`` while it loads.
"""
