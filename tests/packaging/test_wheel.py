"""The wheel built from the repository is a working app on its own: installed (not editable)
into a fresh environment, it migrates a database and serves pages and static files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the build does not read: tools' caches, dependencies, tests and docs.
NOT_BUILT = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "build",
    "instance",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "tests",
    "bench",
    "docs",
)

SERVE = textwrap.dedent(
    """
    import json, sys
    import engine, engine.migrate, webapp
    from webapp import create_app

    app = create_app(TESTING=True)
    client = app.test_client()
    answers = {
        path: [r.status_code, r.mimetype, r.get_data(as_text=True)[:4000]]
        for path in sys.argv[1:]
        for r in [client.get(path)]
    }
    print(json.dumps({
        "engine": engine.__file__,
        "webapp": webapp.__file__,
        "migrations": str(engine.migrate.MIGRATIONS),
        "templates": app.template_folder,
        "static": app.static_folder,
        "answers": answers,
    }))
    """
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _fresh_venv(where: Path) -> Path:
    """A venv without the project, seeing the dependencies already installed in this one."""
    _run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    python = where / "bin" / "python"
    site = Path(
        _run(
            python,
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
            cwd=where,
        ).strip()
    )
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    # Appended after the venv's own site-packages, so what is installed there comes first;
    # .pth files in these folders (the editable install's) are not read.
    (site / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.mark.slow
def test_the_installed_wheel_migrates_and_serves_pages_and_static_files(
    tmp_path: Path,
) -> None:
    if not (ROOT / "static" / "vendor").is_dir():
        pytest.fail("static/vendor is missing: run `make setup` first")
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_BUILT)
    wheels = tmp_path / "wheels"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        wheels,
        source,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("throughline-*.whl")

    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--ignore-installed",
        wheel,
        cwd=tmp_path,
    )

    # A working directory away from the checkout, so only the installed package is importable.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "throughline.db"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV"}
    }
    env.update(
        THROUGHLINE_HOME=str(tmp_path / "home"), DATABASE_URL=f"sqlite:///{database}"
    )

    _run(venv / "bin" / "throughline", "db", "upgrade", cwd=elsewhere, env=env)
    with sqlite3.connect(database) as connection:
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
    assert {"alembic_version", "journeys", "runs", "customers", "events"} <= tables

    found = json.loads(
        _run(
            python,
            "-c",
            SERVE,
            "/login",
            "/static/css/app.css",
            "/static/vendor/htmx.min.js",
            cwd=elsewhere,
            env=env,
        )
    )
    engine, webapp = Path(found["engine"]).parent, Path(found["webapp"]).parent
    assert webapp.is_relative_to(venv) and engine.is_relative_to(venv), found
    assert Path(found["migrations"]) == engine / "migrations"
    assert Path(found["templates"]) == webapp / "templates"
    assert Path(found["static"]) == webapp / "static"
    page, css, vendor = found["answers"].values()
    assert page[:2] == [200, "text/html"] and "<form" in page[2], page
    assert css[:2] == [200, "text/css"], css
    assert vendor[0] == 200 and "htmx" in vendor[2], vendor
