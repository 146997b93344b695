"""The local backend: a Hugging Face transformers model folder, run in this process.

Needs the optional extra ``local`` (transformers) and a torch build the user installs for their
hardware (CPU, or the CUDA version of their GPU): torch is not a dependency, because the
default resolution is a multi-GB CUDA build. The model loads on first use (in a worker thread,
so the event loop keeps answering probes), and generation runs in a worker thread, one at a time
per model: a torch model's ``generate`` holds the whole device anyway.

torch and transformers are imported by name at load time, not at module import, so the service
and its type checking work where they are not installed; their APIs are untyped here on purpose.
"""

from __future__ import annotations

import importlib
import random
import threading
from typing import Any

import anyio

from harmrank.common.contracts.generation import FinishReason, GenerationParams, ServerInfo
from harmrank.common.errors import UpstreamError, UpstreamUnavailable
from harmrank.common.http import CallBudget
from harmrank.generator.backends import Generation
from harmrank.generator.settings import ModelConfig

DEFAULT_MAX_NEW_TOKENS = 256


class _Loaded:
    """The model, its tokenizer and torch, once loaded."""

    def __init__(self, config: ModelConfig) -> None:
        self.torch: Any = importlib.import_module("torch")
        transformers: Any = importlib.import_module("transformers")
        self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(config.path)
        model = transformers.AutoModelForCausalLM.from_pretrained(config.path)
        self.model: Any = model.to(config.device).eval()
        self.device = config.device


def _seed_for(params: GenerationParams, sampling: bool) -> int | None:
    # Like TGI: a sampled generation without a seed gets a random one, reported back.
    if params.seed is not None:
        return params.seed
    return random.randrange(2**31) if sampling else None


def _generate_kwargs(loaded: _Loaded, params: GenerationParams, sampling: bool) -> dict[str, Any]:
    tokenizer = loaded.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        "do_sample": sampling,
        "pad_token_id": pad,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if sampling:
        kwargs["temperature"] = params.temperature or 1.0
        kwargs["top_p"] = params.top_p or 1.0
    if params.repetition_penalty is not None:
        kwargs["repetition_penalty"] = params.repetition_penalty
    if params.stop:
        kwargs |= {"stop_strings": params.stop, "tokenizer": tokenizer}
    return kwargs


def _finish_reason(
    new_ids: list[int], text: str, loaded: _Loaded, params: GenerationParams, limit: int
) -> FinishReason:
    if loaded.tokenizer.eos_token_id in new_ids:
        return "eos_token"
    if params.stop and any(text.endswith(stop) for stop in params.stop):
        return "stop_sequence"
    return "length" if len(new_ids) >= limit else "unknown"


def _run(loaded: _Loaded, inputs: str, params: GenerationParams) -> Generation:
    torch = loaded.torch
    sampling = bool(params.temperature) or params.top_p is not None
    seed = _seed_for(params, sampling)
    kwargs = _generate_kwargs(loaded, params, sampling)
    encoded = loaded.tokenizer(inputs, return_tensors="pt").to(loaded.device)
    prompt_tokens = int(encoded["input_ids"].shape[1])
    with torch.inference_mode():
        if seed is not None:
            torch.manual_seed(seed)
        output = loaded.model.generate(**encoded, **kwargs)
    new_ids = [int(token) for token in output[0, prompt_tokens:].tolist()]
    text = loaded.tokenizer.decode(new_ids, skip_special_tokens=True)
    return Generation(
        text=text,
        finish_reason=_finish_reason(new_ids, text, loaded, params, kwargs["max_new_tokens"]),
        generated_tokens=len(new_ids),
        prompt_tokens=prompt_tokens,
        seed=seed,
    )


class TransformersBackend:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._loaded: _Loaded | None = None
        self._load_error: str | None = None
        self._load_lock = anyio.Lock()
        # torch.manual_seed is process-wide: one generation at a time keeps seeds reproducible.
        self._run_lock = threading.Lock()

    async def _model(self) -> _Loaded:
        async with self._load_lock:
            if self._loaded is None:
                try:
                    self._loaded = await anyio.to_thread.run_sync(_Loaded, self.config)
                except Exception as exc:  # ImportError, a missing folder, a bad config
                    self._load_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                    raise UpstreamUnavailable(
                        f"{self.config.name}: local model did not load ({self._load_error})"
                    ) from exc
            return self._loaded

    def _locked_run(self, loaded: _Loaded, inputs: str, params: GenerationParams) -> Generation:
        with self._run_lock:
            return _run(loaded, inputs, params)

    async def generate(
        self, prompt: str, params: GenerationParams, budget: CallBudget
    ) -> Generation:
        budget.take()  # in-process: one "call" per generation, so the budget reads the same
        loaded = await self._model()
        inputs = self.config.render(prompt)
        try:
            return await anyio.to_thread.run_sync(self._locked_run, loaded, inputs, params)
        except Exception as exc:
            raise UpstreamError(
                f"{self.config.name}: generation failed ({type(exc).__name__})"
            ) from exc

    async def server_info(self) -> ServerInfo | None:
        loaded = self._loaded
        if loaded is None:
            return ServerInfo(model_id=self.config.path)
        # A folder saved from the Hub keeps its origin in the config; else the path names it.
        name = getattr(loaded.model.config, "_name_or_path", None) or self.config.path
        return ServerInfo(model_id=str(name), version=str(loaded.torch.__version__))

    async def health(self) -> str | None:
        return self._load_error

    async def aclose(self) -> None:
        self._loaded = None
