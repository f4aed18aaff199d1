"""Health: the model file, its state chains, rates, mortality and wellbeing."""
