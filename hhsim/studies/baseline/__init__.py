"""The baseline against England: the drift check (``drift``)."""
