"""deploy/: the Dockerfile and compose.yaml read as Docker would read them, checked against the
repository and the settings they name. With a Docker client that has compose, compose itself
checks the file too."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
THROUGHLINE_SERVICES = ("migrate", "web", "worker", "scheduler")


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        current += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(path):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def test_the_image_is_built_in_stages_and_runs_unprivileged():
    stages = _stages(DEPLOY / "Dockerfile")
    names = [re.search(r"\bAS (\w+)", s[0][1], re.I) for s in stages]
    assert [n.group(1) if n else None for n in names] == ["front", "wheels", None]
    front, wheels, final = stages
    assert any("npm ci" in args and "npm run build" in args for _, args in front)
    assert ("COPY", "--from=front /src/static/vendor/ static/vendor/") in wheels
    final_keys = dict(final)
    user = final_keys["USER"]
    assert user not in {"root", "0"} and not user.startswith("0:")
    assert json.loads(final_keys["ENTRYPOINT"]) == ["throughline"]
    assert json.loads(final_keys["CMD"])[0] == "web"
    health = final_keys["HEALTHCHECK"]
    assert "/healthz" in health and "8000" in health
    assert final_keys["EXPOSE"] == "8000"
    # nothing of the sources reaches the final stage but the installed wheels
    assert all(args.startswith("--from=wheels") for key, args in final if key == "COPY")


def test_everything_the_image_copies_exists_and_the_context_keeps_it():
    ignored = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in _stages(DEPLOY / "Dockerfile"):
        for key, args in stage:
            if key != "COPY" or args.startswith("--from"):
                continue
            *sources, _target = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                top = source.rstrip("/").split("/")[0]
                assert top not in ignored, f"COPY {source}: left out of the context"
    # what the wheel is built from is what setup.py ships
    shipped = re.findall(
        r'"(\w+)": "(?:webapp|engine)/', (ROOT / "setup.py").read_text()
    )
    copied = " ".join(args for key, args in _stages(DEPLOY / "Dockerfile")[1])
    for folder in shipped:
        assert f"{folder}/" in copied


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_the_database_behind_pgbouncer_and_migrates_first():
    services = _compose()["services"]
    assert set(services) == {
        "postgres",
        "pgbouncer",
        "redis",
        *THROUGHLINE_SERVICES,
    }
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} waits for a service that is not there"
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    for name in ("web", "worker", "scheduler"):
        service = services[name]
        env = service["environment"]
        assert "@pgbouncer:" in env["DATABASE_URL"]
        assert env["THROUGHLINE_PGBOUNCER"] == "1"
        assert service["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["image"] == services["migrate"]["image"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert "@postgres:" in migrate["environment"]["DATABASE_URL"]
    assert migrate["environment"]["THROUGHLINE_PGBOUNCER"] == "0"


def test_workers_and_schedulers_scale_and_only_the_web_server_is_health_checked():
    services = _compose()["services"]
    for name in ("worker", "scheduler"):
        service = services[name]
        # `--scale worker=4` needs no fixed name and no host port
        assert "container_name" not in service and "ports" not in service
        assert service["healthcheck"] == {"disable": True}
        assert service["command"] == [name]
    assert "healthcheck" not in services["web"]  # the image's own, on /healthz
    assert services["web"]["ports"] == ["${WEB_PORT:-8000}:8000"]


def test_secrets_come_from_the_environment_and_no_value_is_written_down():
    text = (DEPLOY / "compose.yaml").read_text()
    env = _compose()["services"]["web"]["environment"]
    for name in ("SECRET_KEY", "THROUGHLINE_ENCRYPTION_KEY"):
        assert env[name] == f"${{{name}:?set {name} in deploy/.env}}"
    assert "${POSTGRES_PASSWORD:?" in text
    example = (DEPLOY / "example.env").read_text()
    for name in ("POSTGRES_PASSWORD", "SECRET_KEY", "THROUGHLINE_ENCRYPTION_KEY"):
        assert re.search(rf"^{name}=$", example, re.M), (
            f"{name} has a value in example.env"
        )
    assert "deploy/.env" in (ROOT / ".gitignore").read_text()


def test_every_variable_the_deployment_sets_is_one_throughline_reads_and_documents():
    read = set(
        re.findall(
            r'"((?:THROUGHLINE|DATABASE|REDIS|SECRET)_[A-Z_]+)"',
            (ROOT / "engine" / "settings.py").read_text(),
        )
    ) | {"THROUGHLINE_HOME", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
    readme = (ROOT / "README.md").read_text()
    services = _compose()["services"]
    for name in THROUGHLINE_SERVICES:
        for variable in services[name]["environment"]:
            assert variable in read, f"{name} sets {variable}, which nothing reads"
            assert f"`{variable}`" in readme, f"{variable} is not in the README"
    for variable in read:
        assert f"`{variable}`" in readme, (
            f"settings read {variable}; the README omits it"
        )


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False
    ).returncode
    != 0,
    reason="no Docker client with compose here; the tests above read the file instead",
)
def test_docker_compose_accepts_the_file(tmp_path):
    env = tmp_path / "test.env"
    env.write_text("POSTGRES_PASSWORD=x\nSECRET_KEY=y\nTHROUGHLINE_ENCRYPTION_KEY=z\n")
    checked = subprocess.run(
        [
            "docker",
            "compose",
            "--env-file",
            str(env),
            "-f",
            str(DEPLOY / "compose.yaml"),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    services = json.loads(checked.stdout)["services"]
    # compose resolved the anchors and the secrets from the env file
    assert services["worker"]["environment"]["SECRET_KEY"] == "y"
    assert "@pgbouncer:" in services["worker"]["environment"]["DATABASE_URL"]
