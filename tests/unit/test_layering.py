import pkgutil
import subprocess
import sys

import engine

WEB_MODULES = ("flask", "flask_wtf", "flask_login", "flask_htmx", "wtforms", "werkzeug")


def test_engine_imports_no_web_framework():
    """Import every engine module in a fresh interpreter; no web module may come along."""
    names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
    assert "engine.models" in names and "engine.worker" in names
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(','.join(m for m in {WEB_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"engine pulled in: {result.stdout.strip()}"
