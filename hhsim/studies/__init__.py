"""Studies that run an experiment many times: probabilistic sensitivity analysis (``psa``),
global sensitivity analysis (``sensitivity``), calibration (``calibration``) and the
break-even search (``break_even``)."""
