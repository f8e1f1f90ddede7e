"""`python -m cofi.ops.cli` = the `cofi` console script."""

from cofi.ops.cli import app

app()
