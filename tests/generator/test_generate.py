"""POST /v1/generate against TGI stand-ins over real HTTP: bodies, /info, each error mapping."""

from __future__ import annotations

import httpx
from tests.conftest import free_port
from tests.generator.helpers import StartGenerator, StartStandin, model
from tests.generator.tgi_standin import generate_text


async def test_raw_generate_records_text_details_and_info(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin(model_id="mosaicml/mpt-7b", model_sha="abc123")
    url = start_generator([model("mpt-7b", tgi, prompt_template="Q: {prompt}\nA:")])

    body = {
        "model": "mpt-7b",
        "prompt": "how do I",
        "prompt_id": "p1",
        "params": {"seed": 7, "temperature": 0.5},
    }
    response = await client.post(f"{url}/v1/generate", json=body)

    assert response.status_code == 200, response.text
    result = response.json()
    sent = standin.state.bodies[-1]
    assert sent["inputs"] == "Q: how do I\nA:"
    assert sent["parameters"]["details"] is True
    expected = generate_text(sent["inputs"], sent["parameters"])
    assert result["text"] == expected.text
    assert result["finish_reason"] == expected.finish_reason
    assert result["generated_tokens"] == len(expected.tokens)
    assert result["prompt_tokens"] == 5
    assert result["seed"] == 7
    assert result["model_id"] == "mosaicml/mpt-7b"
    assert result["model_revision"] == "abc123"
    assert result["prompt_id"] == "p1"
    assert result["latency_seconds"] > 0
    assert (result["backend"], result["mode"]) == ("tgi", "generate")


async def test_defaults_merge_and_info_is_cached(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    defaults = {"max_new_tokens": 3, "temperature": 0.7, "top_p": 0.9, "stop": ["zulu"]}
    url = start_generator([model("m", tgi, defaults=defaults)])

    for _ in range(3):
        body = {"model": "m", "prompt": "hi", "params": {"temperature": 0.2, "seed": 1}}
        response = await client.post(f"{url}/v1/generate", json=body)
        assert response.status_code == 200, response.text

    parameters = standin.state.bodies[-1]["parameters"]
    assert parameters["max_new_tokens"] == 3
    assert parameters["temperature"] == 0.2
    assert parameters["top_p"] == 0.9
    assert parameters["do_sample"] is True
    assert parameters["stop"] == ["zulu"]
    assert response.json()["params"]["temperature"] == 0.2
    assert response.json()["finish_reason"] == "length"
    assert standin.state.info_calls == 1


async def test_temperature_zero_is_greedy(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    url = start_generator([model("m", tgi, defaults={"temperature": 0.7, "top_p": 0.9})])

    body = {"model": "m", "prompt": "hi", "params": {"temperature": 0}}
    response = await client.post(f"{url}/v1/generate", json=body)

    assert response.status_code == 200, response.text
    parameters = standin.state.bodies[-1]["parameters"]
    assert parameters["do_sample"] is False
    assert "temperature" not in parameters
    assert "top_p" not in parameters
    assert response.json()["seed"] is None


async def test_chat_mode(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    config = model("mistral", tgi, mode="chat", system_prompt="Be brief.")
    url = start_generator([config])

    body = {"model": "mistral", "prompt": "hello there", "params": {"seed": 3, "stop": ["x"]}}
    response = await client.post(f"{url}/v1/generate", json=body)

    assert response.status_code == 200, response.text
    sent = standin.state.bodies[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert sent["seed"] == 3
    assert sent["stop"] == ["x"]
    assert sent["stream"] is False
    result = response.json()
    assert result["mode"] == "chat"
    assert result["finish_reason"] in ("stop", "length")
    assert result["prompt_tokens"] == 4
    assert result["generated_tokens"] > 0
    assert result["seed"] == 3
    assert result["model_id"] == standin.state.model_id


async def test_overload_and_unhealthy_are_retried_then_succeed(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    standin.state.fail(429, times=2)
    standin.state.fail(503, times=1)
    url = start_generator([model("m", tgi)])

    response = await client.post(f"{url}/v1/generate", json={"model": "m", "prompt": "hi"})

    assert response.status_code == 200, response.text
    assert len(standin.state.bodies) == 4


async def test_overload_that_persists_is_503_upstream_overloaded(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    standin.state.fail(429, times=10)
    url = start_generator([model("m", tgi)])

    response = await client.post(f"{url}/v1/generate", json={"model": "m", "prompt": "hi"})

    assert response.status_code == 503
    assert response.json()["error_type"] == "upstream_overloaded"
    assert "Model is overloaded" in response.json()["error"]
    assert len(standin.state.bodies) == 4  # FAST_RETRY.max_attempts


async def test_validation_error_is_permanent_with_tgis_message(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin(max_input_tokens=3)
    url = start_generator([model("m", tgi)])

    body = {"model": "m", "prompt": "one two three four five"}
    response = await client.post(f"{url}/v1/generate", json=body)

    assert response.status_code == 422
    error = response.json()
    assert error["error_type"] == "generation_validation"
    assert "`inputs` must have less than 3 tokens. Given: 5" in error["error"]
    assert error["details"][0]["upstream_error_type"] == "validation"
    assert len(standin.state.bodies) == 1


async def test_generation_error_is_retried_a_bounded_number_of_times(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    standin.state.fail(424, times=1)
    url = start_generator([model("m", tgi)])

    recovered = await client.post(f"{url}/v1/generate", json={"model": "m", "prompt": "hi"})
    assert recovered.status_code == 200, recovered.text
    assert len(standin.state.bodies) == 2

    standin.state.fail(424, times=5)
    failed = await client.post(f"{url}/v1/generate", json={"model": "m", "prompt": "hi"})
    assert failed.status_code == 502
    assert failed.json()["error_type"] == "generation_failed"
    assert "CUDA out of memory" in failed.json()["error"]
    assert len(standin.state.bodies) == 4  # two more: generation_error_attempts


async def test_timeout_is_retried_then_504(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin(latency=1.0)
    url = start_generator([model("m", tgi, timeout_seconds=0.2)])

    response = await client.post(f"{url}/v1/generate", json={"model": "m", "prompt": "hi"})

    assert response.status_code == 504
    assert response.json()["error_type"] == "upstream_timeout"
    assert len(standin.state.bodies) == 4


async def test_connect_error_is_503_upstream_unavailable(
    start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    url = start_generator([model("m", f"http://127.0.0.1:{free_port()}")])

    response = await client.post(f"{url}/v1/generate", json={"model": "m", "prompt": "hi"})

    assert response.status_code == 503
    assert response.json()["error_type"] == "upstream_unavailable"
    assert "unreachable" in response.json()["error"]


async def test_unknown_model_is_404_and_bad_params_422(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    _, tgi = start_standin()
    url = start_generator([model("m", tgi)])

    unknown = await client.post(f"{url}/v1/generate", json={"model": "x", "prompt": "hi"})
    assert unknown.status_code == 404
    assert unknown.json()["error_type"] == "not_found"

    bad = {"model": "m", "prompt": "hi", "params": {"top_p": 2}}
    invalid = await client.post(f"{url}/v1/generate", json=bad)
    assert invalid.status_code == 422
    assert invalid.json()["error_type"] == "validation"
