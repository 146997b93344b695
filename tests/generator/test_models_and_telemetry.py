"""GET /v1/models with a server down, and the generator's telemetry on /metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import free_port
from tests.generator.helpers import StartGenerator, StartStandin, model


async def test_models_lists_registry_info_and_health_with_one_server_down(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    _, up = start_standin(model_id="stabilityai/stablelm-base-alpha-7b", model_sha="f00d")
    sick, sick_url = start_standin(healthy=False)
    down = f"http://127.0.0.1:{free_port()}"
    url = start_generator(
        [
            model("stablelm", up, defaults={"max_new_tokens": 64}, concurrency=2),
            model("sick", sick_url),
            model("down", down, mode="chat"),
        ]
    )

    response = await client.get(f"{url}/v1/models")

    assert response.status_code == 200, response.text
    entries = {entry["name"]: entry for entry in response.json()["models"]}
    assert list(entries) == ["stablelm", "sick", "down"]
    stablelm = entries["stablelm"]
    assert stablelm["healthy"] is True
    assert stablelm["health_reason"] is None
    assert stablelm["server"]["model_id"] == "stabilityai/stablelm-base-alpha-7b"
    assert stablelm["server"]["model_revision"] == "f00d"
    assert stablelm["server"]["max_input_tokens"] == 1024
    assert stablelm["defaults"]["max_new_tokens"] == 64
    assert stablelm["concurrency"] == 2
    assert entries["sick"]["healthy"] is False
    assert "503" in entries["sick"]["health_reason"]
    assert "unhealthy" in entries["sick"]["health_reason"]
    assert entries["sick"]["server"]["model_id"] == sick.state.model_id
    assert entries["down"]["healthy"] is False
    assert "unreachable" in entries["down"]["health_reason"]
    assert entries["down"]["server"] is None
    assert entries["down"]["mode"] == "chat"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_telemetry_names_on_metrics(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    standin.state.fail(429, times=1)
    url = start_generator([model("m", tgi)])
    body = {"model": "m", "prompt": "hi there", "params": {"max_new_tokens": 2}}
    assert (await client.post(f"{url}/v1/generate", json=body)).status_code == 200
    standin.state.fail(422, times=1)
    assert (await client.post(f"{url}/v1/generate", json=body)).status_code == 422

    found = samples((await client.get(f"{url}/metrics")).text)

    assert found[("harmrank_generator_requests_total", (("model", "m"), ("outcome", "ok")))] == 1
    failed = (("model", "m"), ("outcome", "generation_validation"))
    assert found[("harmrank_generator_requests_total", failed)] == 1
    assert found[("harmrank_generator_generated_tokens_total", (("model", "m"),))] == 2
    assert found[("harmrank_generator_prompt_tokens_total", (("model", "m"),))] == 2
    assert found[("harmrank_generator_requests_in_flight", (("model", "m"),))] == 0
    retried = (("model", "m"), ("reason", "status_429"))
    assert found[("harmrank_generator_retries_total", retried)] == 1
    top = (("le", "300.0"), ("model", "m"))
    assert found[("harmrank_generator_request_duration_seconds_bucket", top)] == 2


async def test_standin_exposes_tgi_metric_names(
    start_standin: StartStandin, client: httpx.AsyncClient
) -> None:
    _, tgi = start_standin()
    await client.post(f"{tgi}/generate", json={"inputs": "a b", "parameters": {}})

    text = (await client.get(f"{tgi}/metrics")).text

    # TGI's exporter writes its counters without the _total suffix; match the text as written.
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert {"tgi_request_count", "tgi_queue_size", "tgi_batch_current_size"} <= names
    assert "tgi_request_duration_bucket" in names
    assert "tgi_request_count 1" in text.splitlines()
