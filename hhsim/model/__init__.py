"""One run of the model: ``simulation`` (``HousingHealthModel``, ``RunConfig``), what a run
records (``record``) and its outcomes by baseline group (``groups``)."""
