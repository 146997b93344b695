"""docker-compose.yml against the Compose Specification's JSON schema, and what it promises:
profiles, TGI servers with GPUs and a shared model cache, healthchecks, Prometheus scraping and
Grafana provisioning from the repository; the Dockerfile's targets and its layering."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.deploy.conftest import ROOT

# PyYAML ships no type stubs; imported by name as the generator does.
yaml: Any = importlib.import_module("yaml")

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).with_name("compose-spec.json")
TGI = ("tgi-mistral", "tgi-mpt", "tgi-stablelm")
TARGETS = {"gateway", "worker", "migrate", "generator", "judge", "metrics"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_catches_a_mistake() -> None:
    broken = compose()
    broken["services"]["gateway"]["healthcheck"]["interval"] = ["10s"]
    schema = json.loads(SCHEMA.read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_there_is_a_gpu_and_a_cpu_profile() -> None:
    profiles = {name: set(s.get("profiles", [])) for name, s in services().items()}
    for name in (*TGI, "generator", "judge"):
        assert profiles[name] == {"gpu"}
    for name in ("ollama", "generator-cpu", "judge-cpu"):
        assert profiles[name] == {"cpu"}
    always = {"postgres", "migrate", "gateway", "worker", "metrics", "prometheus", "grafana"}
    assert all(not profiles[name] for name in always)
    aliases = services()["generator-cpu"]["networks"]["default"]["aliases"]
    assert aliases == ["generator"]
    models = json.loads(services()["generator-cpu"]["environment"]["HARMRANK_GENERATOR_MODELS"])
    assert {(m["backend"], m["mode"]) for m in models} == {("openai", "chat")}


def test_tgi_servers_have_a_pinned_image_gpus_a_token_and_the_model_cache() -> None:
    for name in TGI:
        tgi = services()[name]
        assert re.search(r"text-generation-inference:\d+\.\d+\.\d+", tgi["image"])
        (device,) = tgi["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
        assert device["driver"] == "nvidia"
        assert tgi["environment"]["HF_TOKEN"].startswith("${HF_TOKEN")
        assert "model-cache:/data" in tgi["volumes"]
        assert "/health" in " ".join(tgi["healthcheck"]["test"])
    assert "model-cache" in compose()["volumes"]


def test_postgres_has_a_volume_and_healthcheck_and_migrate_runs_once_first() -> None:
    postgres, migrate = services()["postgres"], services()["migrate"]
    assert postgres["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert migrate["command"] == ["harmrank", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("gateway", "worker"):
        condition = services()[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"
    assert services()["worker"]["command"][:2] == ["harmrank", "worker"]


def test_every_build_target_is_a_dockerfile_stage() -> None:
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    assert stages >= TARGETS
    for name, service in services().items():
        if "build" in service:
            assert service["build"]["target"] in stages, name


def test_prometheus_and_grafana_are_provisioned_from_the_repository() -> None:
    for service in ("prometheus", "grafana"):
        for volume in services()[service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "harmrank.yml").read_text())
    uids = {d["uid"] for d in sources["datasources"]}
    assert uids == {"harmrank-prometheus", "harmrank-postgres"}


def stage(name: str) -> str:
    text = DOCKERFILE.read_text()
    start = re.search(rf"^FROM \S+ AS {name}$", text, re.MULTILINE)
    assert start, name
    end = re.search(r"^FROM ", text[start.end() :], re.MULTILINE)
    return text[start.end() : start.end() + end.start()] if end else text[start.end() :]


@pytest.mark.parametrize("service", ["gateway", "generator", "judge", "metrics"])
def test_dependencies_are_installed_from_the_lockfile_before_the_source(service: str) -> None:
    build = stage(f"build-{service}")
    layer = build.index("--no-install-workspace --package")
    assert "uv sync --frozen" in build[: layer + 40]
    assert build.index("COPY") > layer, "source must be copied after the dependency layer"


def test_images_run_as_an_unprivileged_user() -> None:
    runtime = stage("runtime")
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)
    # Keys and environments anywhere in the tree stay out of the build context.
    assert {"**/.env", "**/.venv", "*.pem", "**/*.pem"} <= set(ignored)


def test_matplotlib_has_a_writable_config_dir() -> None:
    """HOME is /nonexistent: without MPLCONFIGDIR every start rebuilds the font cache."""
    runtime = stage("runtime")
    assert re.search(r"MPLCONFIGDIR=/tmp/", runtime)
    for service in ("gateway", "worker"):
        assert "/tmp" in services()[service]["tmpfs"]


def test_the_readme_is_not_in_the_dependency_layer() -> None:
    build = stage("build-base")
    assert "README" not in "".join(re.findall(r"^COPY .*$", build, re.MULTILINE))


def test_each_tgi_server_gets_its_own_gpu() -> None:
    """``count: 1`` reserves "one GPU", which Docker turns into GPU 0 for every container."""
    pinned = []
    for name in TGI:
        (device,) = services()[name]["deploy"]["resources"]["reservations"]["devices"]
        assert "count" not in device, name
        (device_id,) = device["device_ids"]
        found = re.fullmatch(r"\$\{(TGI_\w+_GPU):-(\w+)\}", device_id)
        assert found, f"{name}: the device is configurable ({device_id})"
        pinned.append(found.groups())
    assert len({variable for variable, _ in pinned}) == len(TGI)
    assert len({default for _, default in pinned}) == len(TGI)


def _seconds(duration: str) -> int:
    found = re.fullmatch(r"(\d+)s", duration)
    assert found, duration
    return int(found.group(1))


def test_tgi_has_time_to_download_the_models() -> None:
    """Three ~14 GB downloads at once: at least half an hour before the server counts as failed."""
    for name in TGI:
        check = services()[name]["healthcheck"]
        window = _seconds(check["start_period"]) + _seconds(check["interval"]) * check["retries"]
        assert window >= 1800, name


@pytest.mark.parametrize(
    "package", ["harmrank", "harmrank-generator", "harmrank-judge", "harmrank-metrics"]
)
def test_the_dependency_layer_resolves_from_the_lockfile_alone(
    package: str, tmp_path: Path
) -> None:
    """What the Dockerfile copies before its first `uv sync` is enough for uv (dry run)."""
    uv = shutil.which("uv")
    assert uv, "uv is needed"
    (root_files,) = re.findall(r"^COPY (pyproject\.toml [^\n]*) \./$", DOCKERFILE.read_text(), re.M)
    for name in root_files.split():
        shutil.copy(ROOT / name, tmp_path / name)
    for member in re.findall(r"^COPY (\S+/pyproject\.toml) ", DOCKERFILE.read_text(), re.M):
        (tmp_path / member).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / member, tmp_path / member)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}
    command = [uv, "sync", "--frozen", "--no-dev", "--no-install-workspace", "--dry-run"]
    out = subprocess.run(
        [*command, "--package", package], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def test_variables_are_interpolated_with_plain_defaults() -> None:
    """Compose ends `${VAR:-default}` at the first `}`: a default must hold no braces."""
    text = COMPOSE.read_text().replace("$$", "")
    found = re.findall(r"\$\{([^}]*)\}", text)
    assert len(found) == text.count("${")
    assert not [v for v in found if "{" in v or "[" in v]


HARMRANK_SERVICES = ("gateway", "worker", "generator", "generator-cpu", "judge", "judge-cpu")


def test_tracing_is_off_unless_an_endpoint_is_given_and_a_collector_is_optional() -> None:
    names = set()
    for name in (*HARMRANK_SERVICES, "metrics"):
        environment = services()[name]["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
        assert environment["HARMRANK_LOG_FORMAT"].startswith("${HARMRANK_LOG_FORMAT:-")
        names.add((name.removesuffix("-cpu"), environment["OTEL_SERVICE_NAME"]))
    assert {service for _, service in names} == {
        f"harmrank-{s}" for s in ("gateway", "worker", "generator", "judge", "metrics")
    }
    collector = services()["otel-collector"]
    assert collector["profiles"] == ["tracing"]
    (mount,) = collector["volumes"]
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_the_worker_may_finish_its_longest_task_on_stop() -> None:
    from harmrank.gateway.settings import GatewaySettings

    settings = GatewaySettings()
    grace = _seconds(services()["worker"]["stop_grace_period"])
    assert grace >= settings.downstream_timeout_seconds * settings.call_attempts
