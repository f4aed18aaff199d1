"""Analysis of stored run records (never runs the model itself)."""
