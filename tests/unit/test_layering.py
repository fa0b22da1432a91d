import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"

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


# What the web layer may take from engine.audit: the system actor and the actions' words.
READING_THE_LOG = {"SYSTEM", "ACTION_GROUPS", "ACTION_WORDS", "action_words"}


def _audit_writes(path: Path) -> list[str]:
    """Where a module writes the audit log itself instead of calling an engine function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "engine.audit":
            names = {alias.name for alias in node.names}
            if names - READING_THE_LOG:
                found.append(f"line {node.lineno}: imports {sorted(names)}")
        elif isinstance(node, ast.ImportFrom) and node.module == "engine":
            if any(alias.name == "audit" for alias in node.names):
                found.append(f"line {node.lineno}: imports engine.audit")
        elif isinstance(node, ast.Import):
            if any(alias.name == "engine.audit" for alias in node.names):
                found.append(f"line {node.lineno}: imports engine.audit")
        elif isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else None
            name = called.id if isinstance(called, ast.Name) else name
            if name == "AuditEntry":
                found.append(f"line {node.lineno}: builds an AuditEntry")
            owner = called.value if isinstance(called, ast.Attribute) else None
            if name == "record" and isinstance(owner, ast.Name) and owner.id == "audit":
                found.append(f"line {node.lineno}: calls audit.record")
    return found


def test_the_web_layer_leaves_audit_entries_to_the_engine():
    """A change is audited by the engine function that makes it, whichever of the pages,
    the API or the command line asked for it; the web layer only reads the log."""
    modules = sorted(WEBAPP.rglob("*.py"))
    assert WEBAPP / "cli.py" in modules and WEBAPP / "admin" / "audit_log.py" in modules
    writes = {
        str(path.relative_to(WEBAPP)): found
        for path in modules
        if (found := _audit_writes(path))
    }
    assert writes == {}
