"""Issue #21's Inspect AI side-by-side, harmrank's half: find the Inspect environment, run
``bench/inspect_baseline.py`` in it against stand-ins ``bench/platform_overhead.py`` started,
count the calls the stand-ins served, and print both systems side by side with the issue's
verdicts. Inspect itself is never imported here: it runs in its own Python."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from processes import ROOT, Process

DEFAULT_PYTHON = ROOT / ".bench" / "inspect" / "bin" / "python"
DRIVER = ROOT / "bench" / "inspect_baseline.py"
SETUP = "bash bench/inspect_env.sh"
# Issue #21: harmrank at least 3x Inspect's calls/s at 0 ms latency and 16 in flight, and at
# least 2x lower CPU per call.
RATE_TARGET = 3.0
RATE_CONFIG = (0.0, 16)
CPU_TARGET = 2.0


def find_python(given: Path | None) -> tuple[Path | None, str]:
    """The Inspect environment's Python and its Inspect version, or None and why not."""
    python = given or DEFAULT_PYTHON
    if not python.exists():
        return None, f"no {python} (make it with `{SETUP}`)"
    probe = subprocess.run(
        [str(python), "-c", "import inspect_ai; print(inspect_ai.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{python} cannot import inspect_ai ({last}); `{SETUP}` installs it"
    return python, probe.stdout.strip()


@dataclass
class InspectTrial:
    generations: int  # served by the TGI stand-in (its own count)
    judgments: int  # samples Inspect scored: each a judge call answered and parsed
    expected: int
    seconds: float  # steady: from the first sample's start to the last score
    cpu: float  # the Inspect process's CPU seconds in that window
    eval_seconds: float  # eval() whole: its set-up and log too (not Python's start, imports)
    eval_cpu: float
    standins: float
    rss: float
    settings: dict[str, Any]

    @property
    def calls(self) -> int:
        return self.generations + self.judgments

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def per_call_ms(self, seconds: float) -> float:
        return 1000 * seconds / self.calls


def tgi_served(tgi: Process) -> tuple[int, int]:
    """The TGI stand-in's requests in all and those it answered, from its Prometheus text."""
    text = httpx.get(f"{tgi.url}/metrics", timeout=10).text
    found = dict(re.findall(r"^(tgi_request_count|tgi_request_success) (\d+)$", text, re.M))
    return int(found["tgi_request_count"]), int(found["tgi_request_success"])


def run_driver(
    python: Path, options: list[str], tgi: Process, standins: list[Process], timeout: float
) -> InspectTrial:
    """``bench/inspect_baseline.py`` with ``options``; the stand-ins' CPU around it."""
    before = sum(p.cpu_seconds() for p in standins)
    done = subprocess.run(
        [str(python), str(DRIVER), *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    standin_cpu = sum(p.cpu_seconds() for p in standins) - before
    if done.returncode != 0:
        raise SystemExit(f"Inspect's run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != "success":
        raise SystemExit(f"Inspect's eval ended {result['status']}: {result['error']}")
    requests, served = tgi_served(tgi)
    if requests != served:
        raise SystemExit(f"the TGI stand-in refused {requests - served} of Inspect's calls")
    return InspectTrial(
        generations=served,
        judgments=result["scored"],
        expected=4 * result["samples"],
        seconds=result["seconds"],
        cpu=result["cpu"],
        eval_seconds=result["eval_seconds"],
        eval_cpu=result["eval_cpu"],
        standins=standin_cpu,
        rss=result["peak_rss_mb"],
        settings=result["settings"],
    )


@dataclass(frozen=True)
class HarmrankFigures:
    """Medians of harmrank's trials of one configuration, as the side-by-side needs them."""

    latency: float
    in_flight: int
    rate: float
    cpu_ms: float  # harmrank's processes
    database_ms: float
    standins_ms: float
    rss_mb: float  # the largest of its processes
    rss_total_mb: float  # the sum of its processes' peaks
    trial_rates: tuple[float, ...] = ()  # each trial's, paired with Inspect's trial after it


def side_by_side(ours: HarmrankFigures, theirs: list[InspectTrial]) -> list[str]:
    """The table's lines for one configuration, with the issue's verdicts."""
    median = statistics.median
    rate = median([t.rate for t in theirs])
    cpu = median([t.per_call_ms(t.cpu) for t in theirs])
    standins = median([t.per_call_ms(t.standins) for t in theirs])
    rss = max(t.rss for t in theirs)
    whole_rate = median([t.calls / t.eval_seconds for t in theirs])
    whole_cpu = median([t.per_call_ms(t.eval_cpu) for t in theirs])
    lines = [
        f"  {'':34s} {'harmrank':>10s} {'Inspect':>10s}",
        f"  {'calls/s (steady window)':34s} {ours.rate:10.1f} {rate:10.1f}",
        f"  {'  Inspect, its eval() whole':34s} {'':10s} {whole_rate:10.1f}",
        f"  {'CPU per call, own processes (ms)':34s} {ours.cpu_ms:10.2f} {cpu:10.2f}",
        f"  {'  harmrank and its database':34s} {ours.cpu_ms + ours.database_ms:10.2f}",
        f"  {'  Inspect, its eval() whole':34s} {'':10s} {whole_cpu:10.2f}",
        f"  {'stand-ins CPU per call (ms)':34s} {ours.standins_ms:10.2f} {standins:10.2f}",
        f"  {'peak RSS, largest process (MB)':34s} {ours.rss_mb:10.0f} {rss:10.0f}",
        f"  {'peak RSS, all its processes (MB)':34s} {ours.rss_total_mb:10.0f} {rss:10.0f}",
    ]
    short = [t for t in theirs if t.calls != t.expected]
    if short:
        lines.append(f"  Inspect made {[t.calls for t in short]} calls, not {short[0].expected}")
    rate_ratio = ours.rate / rate
    if len(ours.trial_rates) == len(theirs) > 1:  # the pairs shared the machine's state
        paired = zip(ours.trial_rates, theirs, strict=True)
        pairs = ", ".join(f"{mine / trial.rate:.2f}" for mine, trial in paired)
        lines.append(f"  calls/s, harmrank / Inspect, trial by trial: {pairs}")
    if (ours.latency, ours.in_flight) == RATE_CONFIG:
        lines.append(_verdict("calls/s, harmrank / Inspect", rate_ratio, RATE_TARGET))
    else:
        lines.append(f"  calls/s, harmrank / Inspect: {rate_ratio:.2f}x (no target here)")
    lines.append(_verdict("CPU per call, Inspect / harmrank", cpu / ours.cpu_ms, CPU_TARGET))
    with_db = cpu / (ours.cpu_ms + ours.database_ms)
    lines.append(f"    (counting harmrank's database backends too: {with_db:.2f}x)")
    return lines


def _verdict(what: str, ratio: float, target: float) -> str:
    met = "met" if ratio >= target else "NOT met"
    return f"  {what}: {ratio:.2f}x (target at least {target:g}x): {met}"


def settings_line(trials: list[InspectTrial]) -> str:
    """The settings Inspect ran with (its log folder is a temporary one per trial)."""
    shown = {k: v for k, v in trials[0].settings.items() if k != "log_dir"}
    return "Inspect's settings: " + ", ".join(f"{k}={v}" for k, v in shown.items())
