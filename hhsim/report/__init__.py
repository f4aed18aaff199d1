"""The HTML report of an output folder (``hhsim report OUTDIR``: ``page.write_report``), the
finished folder read back (``batch``, ``stored``) and the parameter table (``paramtable``)."""
