"""Foundations shared by every layer: errors, checked inputs, parameters, distributions,
random streams, accounting of costs and rewards, price uprating and the shipped data files."""
