"""The app as each web server process loads it (`python -m webapp.serve` starts them)."""

from engine import heap, logs, tracing
from webapp import access_log, create_app
from webapp.launcher import die_with_parent

# A web process outlives a killed server process otherwise, serving beside its replacement.
die_with_parent()
logs.setup()
access_log.to_stdout()
tracing.configure("throughline-web")
app = create_app()
heap.freeze_startup()
