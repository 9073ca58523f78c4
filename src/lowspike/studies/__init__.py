"""What each DVC stage does, one module per study; stages/ only parse arguments and call these."""

from pathlib import Path

RESULTS_SCHEMA_VERSION = 2
"""The layout of both studies' ``results.json`` (its ``schema_version``; a file without one is 1).
Raised when a key is renamed, removed or changes meaning: the report refuses a file of another
version in one line, and ``make diff`` says the two versions differ (docs/experiments.md)."""

EXPORTS = Path("runs") / "export"
"""Where the ``export_*`` stages write (:mod:`lowspike.studies.export`): per study a folder of
``.nir`` files and one :data:`DEPLOY_RECORD`, which the reports' Deploy tables read."""

DEPLOY_RECORD = "deploy.json"
"""The name of that record in each export folder."""

DEPLOY_LIBRARIES = ("sinabs", "snntorch")
"""The libraries each exported file runs in, the keys of each model's agreement in the record
(:func:`lowspike.deploy.agreement_summary`, :func:`lowspike.deploy.student_agreement`)."""
