"""The container files, checked without Docker (this machine cannot pull base images): the
Dockerfile's stages, user, ports and healthcheck, its install command against the README's and
CI's, and the compose file. The healthcheck command itself is run against a live server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in joined]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for name, args in instructions(ROOT / "Dockerfile"):
        if name == "FROM":
            result.append([])
        result[-1].append((name, args))
    return result


def final_stage() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, args in stages()[-1]:
        found.setdefault(name, []).append(args)
    return found


def env_of(stage: dict[str, list[str]]) -> dict[str, str]:
    env = {}
    for args in stage.get("ENV", []):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def test_multi_stage_and_the_runtime_takes_only_the_build_output():
    all_stages = stages()
    assert len(all_stages) >= 2
    assert re.fullmatch(r"\S+ AS build", all_stages[0][0][1], re.IGNORECASE)
    final = final_stage()
    assert final["COPY"] == ["--from=build /opt/sipsvc /opt/sipsvc"]
    assert final["CMD"] == ['["sipsvc", "serve"]']


def test_runs_as_a_non_root_user_created_in_the_image():
    final = final_stage()
    (user,) = final["USER"]
    assert user not in ("root", "0") and not user.startswith("0:")
    assert any("useradd --system" in run and run.split()[-1] == user for run in final["RUN"])


def test_exposes_http_and_sip_over_udp_and_tcp_on_the_configured_ports():
    final = final_stage()
    env = env_of(final)
    http_port = env["SIPSVC_HTTP"].rpartition(":")[2]
    sip_port = env["SIPSVC_SIP"].rpartition(":")[2]
    assert env["SIPSVC_HTTP"].startswith("0.0.0.0:") and env["SIPSVC_SIP"].startswith("0.0.0.0:")
    exposed = {port for args in final["EXPOSE"] for port in args.split()}
    assert exposed == {f"{http_port}/tcp", f"{sip_port}/udp", f"{sip_port}/tcp"}
    assert env["SIPSVC_DATA_DIR"] in final["VOLUME"]


def _install_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if "scripts/install.sh" in line
            and not line.lstrip().startswith("#")]


def test_the_image_installs_with_the_command_the_readme_and_ci_use():
    build_runs = [args for name, args in stages()[0] if name == "RUN"]
    assert build_runs == ["bash scripts/install.sh"]
    assert _install_lines(ROOT / "scripts" / "serve.sh") == ["bash scripts/install.sh"]
    assert _install_lines(ROOT / "scripts" / "test.sh") == ["bash scripts/install.sh test"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == ["bash scripts/test.sh"]
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/serve.sh" in readme and "bash scripts/test.sh" in readme
    # The install script itself is the only place that runs pip for the package.
    assert "pip install" not in (ROOT / "scripts" / "serve.sh").read_text()
    assert "pip install" not in (ROOT / "scripts" / "test.sh").read_text()
    assert ".venv/bin/python -m pip install -q -e \".${1:+[$1]}\"" in (ROOT / "scripts" / "install.sh").read_text()
    # Everything the install reads is copied in before it runs.
    copied = " ".join(args for name, args in stages()[0] if name == "COPY")
    for needed in ("pyproject.toml", "README.md", "scripts", "sipsvc"):
        assert needed in copied


def _healthcheck_command() -> list[str]:
    (healthcheck,) = final_stage()["HEALTHCHECK"]
    assert "CMD" in healthcheck
    return json.loads(healthcheck.split("CMD", 1)[1])


async def test_the_healthcheck_command_passes_on_a_live_server_and_fails_without_one(aiohttp_server, config):
    from sipsvc.app import create_app

    command = _healthcheck_command()
    assert "/healthz" in command[-1]
    command[0] = "python3"
    server = await aiohttp_server(create_app(config))

    def run(port: int) -> int:
        return subprocess.run(command, env={**os.environ, "SIPSVC_HTTP": f"0.0.0.0:{port}"},
                              capture_output=True, timeout=20).returncode

    assert await asyncio.to_thread(run, server.port) == 0
    assert await asyncio.to_thread(run, free_port()) != 0


def test_compose_runs_the_image_with_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "sipsvc"}
    sipsvc, redis = services["sipsvc"], services["redis"]
    assert sipsvc["build"] == "." and redis["image"].startswith("redis:")
    assert sipsvc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert sipsvc["environment"]["SIPSVC_REDIS_URL"].startswith("redis://redis:6379")
    env = env_of(final_stage())
    http_port, sip_port = env["SIPSVC_HTTP"].rpartition(":")[2], env["SIPSVC_SIP"].rpartition(":")[2]
    assert set(sipsvc["ports"]) == {f"{http_port}:{http_port}/tcp", f"{sip_port}:{sip_port}/udp",
                                    f"{sip_port}:{sip_port}/tcp"}
    volumes = {entry.split(":")[1] for entry in sipsvc["volumes"]}
    assert env["SIPSVC_DATA_DIR"] in volumes


def test_the_readme_shows_the_image_and_compose():
    readme = (ROOT / "README.md").read_text()
    assert "docker build -t sipsvc ." in readme
    assert "docker compose up --build" in readme
    run = next(line for line in readme.splitlines() if line.startswith("docker run "))
    for port in ("8000:8000", "5060:5060/udp", "5060:5060/tcp"):
        assert f"-p {port}" in run
