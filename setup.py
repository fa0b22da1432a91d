"""The wheel carries the top-level `templates/`, `static/` and `migrations/` inside the packages
that read them (`webapp/templates`, `webapp/static`, `engine/migrations`); everything else about
the build is in pyproject.toml. An editable install reads them from the checkout instead."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {
    "templates": "webapp/templates",
    "static": "webapp/static",
    "migrations": "engine/migrations",
}
SKIPPED = {"__pycache__", ".built"}


class BuildPyWithFolders(build_py):
    """build_py, then the shipped folders copied into the packages of the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not (ROOT / "static" / "vendor").is_dir():
            raise SystemExit(
                "static/vendor is missing: run `npm ci && npm run build` before building"
            )
        for source, target in SHIPPED.items():
            for path in sorted((ROOT / source).rglob("*")):
                inside = path.relative_to(ROOT / source)
                if (
                    path.is_dir()
                    or SKIPPED & set(inside.parts)
                    or path.suffix == ".pyc"
                ):
                    continue
                copy = Path(self.build_lib) / target / inside
                self.mkpath(str(copy.parent))
                self.copy_file(str(path), str(copy))


setup(cmdclass={"build_py": BuildPyWithFolders})
