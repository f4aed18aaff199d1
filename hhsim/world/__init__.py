"""The simulated world: tenants and dwellings, synthetic or from a provider's own files."""
