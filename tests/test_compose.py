"""docker-compose.yml, the Dockerfile and .env.example agree with the code (no Docker here)."""

from __future__ import annotations

import dataclasses
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

import cli
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ("migrate", "api", "worker", "beat", "flower", "sandbox")
#: Variables that are not tinysync settings: compose's own, and Flower's.
NOT_SETTINGS = {"POSTGRES_PASSWORD", "FLOWER_BASIC_AUTH"}


def setting_names() -> set[str]:
    """Every environment name Settings reads, aliases included."""
    names: set[str] = set()
    for f in dataclasses.fields(Settings):
        if not f.name.startswith("_"):
            names.update(Settings._ALIASES.get(f.name, (f.name.upper(),)))
    return names


def env_example() -> dict[str, str]:
    """The assignments of .env.example."""
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def command_of(service: str) -> list[str]:
    """A service's command as an argument list."""
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def resolve_cli(args: list[str]) -> Any:
    """Parse `tinysync ARGS` the way the CLI would, without running it; the leaf's context."""
    command = typer.main.get_command(cli.app)
    while hasattr(command, "list_commands"):  # a group (typer ships its own click)
        name, args = args[0], args[1:]
        sub = command.get_command(command.context_class(command), name)
        assert sub is not None, f"tinysync has no command {name!r}"
        command = sub
    return command.make_context(command.name, list(args))


def test_compose_has_the_whole_deployment():
    assert {"postgres", "redis", *APP_SERVICES} <= set(SERVICES)
    assert SERVICES["sandbox"]["profiles"] == ["sandbox"]
    assert all("profiles" not in SERVICES[s] for s in set(SERVICES) - {"sandbox"})


def test_long_running_services_have_health_checks():
    for name in ("postgres", "redis", "api", "worker", "flower", "sandbox"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_app_services_wait_for_healthy_databases_and_the_migration():
    for name in ("api", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert command_of("migrate") == ["tinysync", "db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"


@pytest.mark.parametrize("service", [s for s in APP_SERVICES if s != "api"])
def test_every_tinysync_command_in_compose_is_a_real_cli_command(service):
    command = command_of(service)
    assert command[0] == "tinysync"
    resolve_cli(command[1:])  # raises on an unknown command or option


def test_tinysync_is_the_packages_console_script():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["tinysync"] == "cli:app"


def test_the_api_runs_the_wsgi_factory_under_gunicorn():
    command = command_of("api")
    assert command[0] == "gunicorn"
    module, _, call = command[-1].partition(":")
    assert (module, call) == ("cli", "wsgi_app()")
    assert callable(cli.wsgi_app)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("gunicorn") for dep in project["dependencies"])


def test_the_worker_health_check_uses_an_app_celery_can_load():
    check = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    assert re.search(r"celery -A cli:celery inspect ping --destination tinysync@", check)
    assert "--name" not in command_of("worker")  # so the node is tinysync@<hostname>
    assert resolve_cli(["worker"]).params["name"] == "tinysync@%h"


def test_the_app_environment_names_are_settings():
    environment = SERVICES["api"]["environment"]
    assert set(environment) <= setting_names()
    for name in APP_SERVICES:
        assert set(SERVICES[name].get("environment", {})) <= setting_names() | NOT_SETTINGS


def test_env_example_names_every_setting_and_nothing_else():
    names = set(env_example())
    for f in dataclasses.fields(Settings):
        if not f.name.startswith("_"):
            aliases = set(Settings._ALIASES.get(f.name, (f.name.upper(),)))
            assert names & aliases, f"{f.name} is missing from .env.example"
    assert names - NOT_SETTINGS <= setting_names()
    assert "TINY_MIN_INTERVAL" in names  # the seed's name


def test_env_example_values_are_valid_settings():
    values = {k: v for k, v in env_example().items() if k not in NOT_SETTINGS}
    settings = Settings.from_env(values)
    assert settings.tiny_min_interval_ms == 1100
    assert settings.executor == "inline"  # blank broker: the default, as documented


def test_the_image_holds_every_package_the_project_installs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for name in packages:
        assert re.search(rf"^COPY {name} \./{name}$", dockerfile, re.M), name
    assert "pip install -c requirements/constraints.txt ." in dockerfile
    assert re.search(r"^COPY requirements \./requirements$", dockerfile, re.M)
    assert all(SERVICES[s]["build"] == "." for s in APP_SERVICES)
