"""`python -m vppctl` runs the same app as the `vppctl` script."""

from vppctl.main import app

app()
