"""The transformers backend, through the same API, with a tiny random model made on the spot.

Nothing is downloaded: a word-level tokenizer is trained on a few sentences and a 2-layer,
32-dim GPT-2 is initialised at random, both saved to tmp_path and loaded by the backend.

These tests need torch and the ``local`` extra. Without them they are skipped, unless
``HARMRANK_TEST_LOCAL_BACKEND=1`` is set (CI sets it): then a missing torch fails them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.generator.helpers import StartGenerator

from harmrank.generator.settings import ModelConfig

REQUIRED = os.environ.get("HARMRANK_TEST_LOCAL_BACKEND") == "1"
AVAILABLE = all(importlib.util.find_spec(name) for name in ("torch", "transformers"))

SENTENCES = [
    "the model answers the prompt",
    "a small model can be harmful",
    "judges rank the answers of small models",
    "the study compares human and model rankings",
]

needs_torch = pytest.mark.skipif(
    not (AVAILABLE or REQUIRED),
    reason="torch/transformers not installed (set HARMRANK_TEST_LOCAL_BACKEND=1 to require)",
)


def make_tiny_model(folder: Path) -> None:
    # Imported by name: these are optional, untyped here, and absent where the extra is not.
    tokenizers: Any = importlib.import_module("tokenizers")
    transformers: Any = importlib.import_module("transformers")
    torch: Any = importlib.import_module("torch")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"])
    tokenizer.train_from_iterator(SENTENCES, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    fast.save_pretrained(folder)
    config = transformers.GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=fast.eos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    make_tiny_model(folder)
    return folder


def local_model(path: Path) -> ModelConfig:
    return ModelConfig(
        name="tiny", backend="transformers", path=str(path), prompt_template="the {prompt}"
    )


@needs_torch
async def test_local_backend_generates_reproducibly_through_the_api(
    tiny_model: Path, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    url = start_generator([local_model(tiny_model)])
    params = {"max_new_tokens": 5, "temperature": 0.9, "seed": 11}
    body = {"model": "tiny", "prompt": "small model answers", "params": params}

    first = await client.post(f"{url}/v1/generate", json=body)
    again = await client.post(f"{url}/v1/generate", json=body)

    assert first.status_code == 200, first.text
    result = first.json()
    assert result["text"] == again.json()["text"]
    assert result["seed"] == 11
    assert result["prompt_tokens"] == 4
    assert 1 <= result["generated_tokens"] <= 5
    assert result["finish_reason"] in ("length", "eos_token")
    assert (result["backend"], result["mode"]) == ("transformers", "generate")
    assert result["model_id"] == str(tiny_model)


@needs_torch
async def test_local_backend_greedy_and_listed(
    tiny_model: Path, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    url = start_generator([local_model(tiny_model)])
    body = {"model": "tiny", "prompt": "study", "params": {"max_new_tokens": 3, "temperature": 0}}

    response = await client.post(f"{url}/v1/generate", json=body)
    models = await client.get(f"{url}/v1/models")

    assert response.status_code == 200, response.text
    assert response.json()["seed"] is None
    (entry,) = models.json()["models"]
    assert entry["healthy"] is True
    assert entry["backend"] == "transformers"


async def test_missing_model_folder_is_503_and_unhealthy(
    tmp_path: Path, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    url = start_generator([local_model(tmp_path / "absent")])

    response = await client.post(f"{url}/v1/generate", json={"model": "tiny", "prompt": "hi"})
    models = await client.get(f"{url}/v1/models")

    assert response.status_code == 503
    assert response.json()["error_type"] == "upstream_unavailable"
    assert "did not load" in response.json()["error"]
    assert models.json()["models"][0]["healthy"] is False
