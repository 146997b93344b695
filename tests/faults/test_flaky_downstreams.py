"""Model servers that overload and hang, judges that answer garbage: runs still complete."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from starlette.types import ASGIApp
from tests.faults.chaos import Chaos, Schedule
from tests.faults.stack import (
    JUDGES,
    Servers,
    WorkerProcess,
    assert_exactly_once,
    client,
    count,
    finished,
    gateway_settings,
    migrate,
    start_downstreams,
    start_gateway,
    start_run,
    stored,
    wait_for,
    worker_env,
)
from tests.judge.standins import Policy, Reply, Seen, prefer_position

from harmrank.gateway.db.run_models import Stage

PROMPTS = 8
MALFORMED = (
    "Response A is clearly the worst one here, then B.",  # not the format asked for
    '{"A": 1, "B": 1, "C": "N/A"}',  # a tie
    '{"A": 2}',  # labels missing, a gap
    "",  # nothing at all
)


async def test_a_run_completes_through_overload_and_timeouts_of_the_model_servers(
    pg_url: str, servers: Servers, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    schedule = Schedule(seed=7)

    def wrap(app: ASGIApp) -> ASGIApp:
        return Chaos(app, schedule, hang_seconds=1.0)

    # The generator gives up on a call after 0.3 s and retries it.
    downstreams = start_downstreams(servers, wrap_tgi=wrap, model_timeout=0.3)
    await migrate(pg_url)
    gateway = start_gateway(servers, gateway_settings(pg_url, downstreams))
    async with client(gateway.url) as http:
        run = await start_run(http, "chaos", PROMPTS)
        workers.append(WorkerProcess(worker_env(pg_url, downstreams, "w"), tmp_path / "w.log"))
        final = await wait_for(http, run["id"], finished, within=90)

    assert final["status"] == "done", final
    assert count(final, "generate", "done") == PROMPTS * 3
    assert count(final, "judge", "done") == PROMPTS * len(JUDGES)
    assert_exactly_once(await stored(pg_url, run["id"]), PROMPTS, PROMPTS * len(JUDGES))
    # Over 20 calls were made, so at least one whole block of the schedule was served.
    assert sum(schedule.injected.values()) >= 20
    assert schedule.injected["429"] >= 2
    assert schedule.injected["503"] >= 2
    assert schedule.injected["hang"] >= 1


def sometimes_malformed(rate: float, judge: Policy) -> Policy:
    """Garbage for a fixed share of requests, chosen by a hash of the request (repeatable)."""

    def policy(seen: Seen) -> Reply:
        digest = hashlib.sha256(json.dumps(seen.body, sort_keys=True).encode()).digest()
        if digest[0] < rate * 256:
            return Reply(text=MALFORMED[digest[1] % len(MALFORMED)])
        return judge(seen)

    return policy


async def test_malformed_judge_answers_are_repaired_or_abstentions_the_report_counts(
    pg_url: str, servers: Servers, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    policy = sometimes_malformed(0.5, prefer_position(1))
    downstreams = start_downstreams(servers, judge_policy=policy)
    await migrate(pg_url)
    gateway = start_gateway(servers, gateway_settings(pg_url, downstreams))
    async with client(gateway.url) as http:
        run = await start_run(http, "garbled", PROMPTS, orders=2)
        workers.append(WorkerProcess(worker_env(pg_url, downstreams, "w"), tmp_path / "w.log"))
        final = await wait_for(http, run["id"], finished, within=90)
        report = (await http.get(f"/v1/runs/{run['id']}/report")).json()

    judgments = PROMPTS * len(JUDGES) * 2
    found = await stored(pg_url, run["id"])
    abstained = [t for t in found.tasks if t[0] == Stage.JUDGE and t[3] == "judge_abstained"]
    # An abstention leaves a ranking missing: the run says so rather than "done".
    assert final["status"] == ("done_with_failures" if abstained else "done"), final
    assert found.states(Stage.JUDGE) == {
        "done": judgments - len(abstained),
        **({"failed": len(abstained)} if abstained else {}),
    }
    # Each abstention says why: the judge's reason, then what was wrong with its answer.
    assert all((t[4] or "").startswith("invalid_answer: ") for t in abstained)
    outcomes = report["run"]["judge_outcomes"]
    assert sum(o["abstained"] for o in outcomes.values()) == len(abstained) >= 1
    assert sum(o["ranked"] for o in outcomes.values()) == judgments - len(abstained)
    assert sum(o["repaired"] for o in outcomes.values()) >= 1
    assert sum(o["failed"] for o in outcomes.values()) == 0
    assert len(found.rankings) == judgments - len(abstained)
    assert set(found.rankings.values()) == {1}
