"""The web server's entry point: `granian --interface wsgi webapp.wsgi:app`."""

from webapp import access_log, create_app

access_log.to_stdout()
app = create_app()
