"""Helpers of tests/test_fuzz_cli.py (issue 14): the harness and the hypothesis strategies."""
