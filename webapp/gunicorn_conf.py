"""gunicorn settings for `throughline web` and `throughline up`."""

import os

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


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Let Prometheus forget the gauges of a gunicorn worker that has exited."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
