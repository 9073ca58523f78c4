"""What each DVC stage does, one module per study; stages/ only parse arguments and call these."""

RESULTS_SCHEMA_VERSION = 2
"""The layout of both studies' ``results.json`` (its ``schema_version``; a file without one is 1).
Raised when a key is renamed, removed or changes meaning: the report refuses a file of another
version in one line, and ``make diff`` says the two versions differ (docs/experiments.md)."""
