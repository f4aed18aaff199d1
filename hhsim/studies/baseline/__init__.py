"""The baseline against England: the drift check (``drift``) and ``hhsim check-model``
(``check``: the baseline's targets, coverage and docs/validation.md)."""
