"""The app as each web server process loads it (`python -m webapp.serve` starts them)."""

from webapp import access_log, create_app
from webapp.launcher import die_with_parent

# A web process outlives a killed server process otherwise, serving beside its replacement.
die_with_parent()
access_log.to_stdout()
app = create_app()
