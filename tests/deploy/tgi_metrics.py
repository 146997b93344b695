"""TGI's documented Prometheus metrics, and a TGI stand-in that exports the ones dashboards read.

The names are TGI's metrics reference (text-generation-inference, docs/source/reference/
metrics.md, "The following metrics are exposed"; https://huggingface.co/docs/
text-generation-inference/reference/metrics). TGI's counters carry no ``_total`` suffix.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from tests.generator.tgi_standin import Standin

TGI_GAUGES = frozenset({"tgi_batch_current_max_tokens", "tgi_batch_current_size", "tgi_queue_size"})
TGI_COUNTERS = frozenset(
    {
        "tgi_batch_inference_count",
        "tgi_batch_inference_success",
        "tgi_request_count",
        "tgi_request_success",
    }
)
TGI_HISTOGRAMS = frozenset(
    {
        "tgi_batch_decode_duration",
        "tgi_batch_filter_duration",
        "tgi_batch_forward_duration",
        "tgi_batch_inference_duration",
        "tgi_batch_next_size",
        "tgi_request_duration",
        "tgi_request_generated_tokens",
        "tgi_request_inference_duration",
        "tgi_request_input_length",
        "tgi_request_max_new_tokens",
        "tgi_request_mean_time_per_token_duration",
        "tgi_request_queue_duration",
        "tgi_request_skipped_tokens",
        "tgi_request_validation_duration",
    }
)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def tgi_documented(name: str) -> bool:
    """Whether a series name is one TGI documents (a histogram's by its _bucket/_sum/_count)."""
    if name in TGI_GAUGES or name in TGI_COUNTERS:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in TGI_HISTOGRAMS:
            return True
    return False


# Families the shared stand-in does not write; values follow from its recorded calls.
EXTRA_HISTOGRAMS = (
    ("tgi_request_queue_duration", (0.01, 0.1, 1.0)),
    ("tgi_request_mean_time_per_token_duration", (0.01, 0.05, 0.1)),
    ("tgi_request_generated_tokens", (16.0, 64.0, 256.0)),
    ("tgi_request_input_length", (16.0, 64.0, 256.0)),
)


class DocumentedTgi(Standin):
    """The TGI stand-in whose ``/metrics`` also has the rest of the families dashboards read."""

    async def metrics(self, request: Request) -> Response:
        base = await super().metrics(request)
        lines = [bytes(base.body).decode()]
        lines += ["# TYPE tgi_batch_current_max_tokens gauge", "tgi_batch_current_max_tokens 0"]
        served = self.state.success_count
        for name, bounds in EXTRA_HISTOGRAMS:
            lines.append(f"# TYPE {name} histogram")
            lines += [f'{name}_bucket{{le="{bound}"}} {served}' for bound in bounds]
            lines += [
                f'{name}_bucket{{le="+Inf"}} {served}',
                f"{name}_sum 0",
                f"{name}_count {served}",
            ]
        return PlainTextResponse("\n".join(lines) + "\n")
