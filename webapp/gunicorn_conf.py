"""gunicorn settings for `throughline web` and `throughline up`."""

import os

from gunicorn.glogging import Logger

worker_class = "gthread"
# A webhook request mostly waits for its group of events to be committed (engine.intake):
# more threads let more of them share one commit.
threads = 32
graceful_timeout = 10
# One control socket per user would collide between installs; nothing here uses it.
control_socket_disable = True
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


class AccessLogger(Logger):
    """Logs every request except accepted webhooks.

    Channels post thousands of events a second; a line for each accepted one would bury the
    rest of the log and cost the intake about a fifth of its time. `/metrics` counts them by
    channel and answer, and a refused webhook (any 4xx or 5xx) is still logged.
    """

    def access(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        status = getattr(resp, "status_code", None) or 0
        if environ.get("PATH_INFO", "").startswith("/hooks/") and status < 400:
            return
        super().access(resp, req, environ, request_time)


logger_class = AccessLogger


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Let Prometheus forget the gauges of a gunicorn worker that has exited."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
