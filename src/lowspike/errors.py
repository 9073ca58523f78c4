"""The bad inputs a stage reports in one line and exit code 2 (``runtime.run_stage``), nothing
written: a params value, a command-line value, a dataset that is missing or damaged."""

from __future__ import annotations


class BadInput(Exception):
    """Input the user can fix; ``str()`` is the one-line message naming what is wrong and where."""


class ParamsError(BadInput):
    """A params.yaml value (or a stage's command-line value) is invalid."""


class DatasetMissing(BadInput):
    """The source files of a dataset are not where they were looked for; the message names the
    path, the expected layout and how to get the data."""


class PreparedDataCorrupt(BadInput):
    """A prepared file is missing, truncated or altered (its sha256 does not match)."""


class DataFileError(BadInput):
    """A dataset file is damaged: not in its format, truncated, of the wrong shape, or failing the
    checksum its format carries; the message names the file and what is wrong."""
