"""Unit tests of the peer benchmark's pure parts: CPU accounting, request bodies, aggregation, verdicts, docs."""

from __future__ import annotations

import math
import os
import time

import orjson
import pytest

from bench.peers import cpu, loadgen, report, run
from bench.peers.servers import Route


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_it_counts_the_cpu_of_its_own_process_group() -> None:
    before = cpu.group_cpu(os.getpgid(0))
    _burn(0.2)
    after = cpu.group_cpu(os.getpgid(0))
    assert after.processes >= 1
    assert after.total - before.total >= 0.15


def test_it_counts_the_cpu_of_listed_pids_and_ignores_gone_ones() -> None:
    before = cpu.pids_cpu([os.getpid()])
    _burn(0.2)
    assert cpu.pids_cpu([os.getpid()]) - before >= 0.15
    assert cpu.pids_cpu([2**22 + 12345]) == 0.0


def test_it_refuses_the_same_cpu_for_server_and_load() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: nothing is pinned")
    with pytest.raises(ValueError):
        cpu.choose_pinning(0, 0, True)
    assert not cpu.choose_pinning(None, None, False).enabled


@pytest.mark.parametrize("stream", [False, True])
def test_it_builds_a_unique_prompt_around_the_id(stream: bool) -> None:
    route = Route("http://127.0.0.1:9/v1/chat/completions", {"Authorization": "Bearer k"}, "m")
    request = run.request_for(route, stream=stream)
    body = orjson.loads(f"{request.prefix}7-42{request.suffix}")
    assert body["model"] == "m"
    assert "Request 7-42:" in body["messages"][0]["content"]
    assert body.get("stream", False) is stream
    assert request.marker == ("[DONE]" if stream else '"choices"')
    assert request.headers["Authorization"] == "Bearer k"


def test_every_run_numbers_its_prompts_apart() -> None:
    route = Route("http://127.0.0.1:9/v1/chat/completions", {}, "m")
    request = run.request_for(route, stream=False)
    first, second = loadgen.for_one_run(request), loadgen.for_one_run(request)
    # wrk and the aiohttp client number requests from 1 in every run: the run id keeps the bodies apart.
    assert f"{first.prefix}1-1{first.suffix}" != f"{second.prefix}1-1{second.suffix}"
    content = orjson.loads(f"{first.prefix}1-1{first.suffix}")["messages"][0]["content"]
    assert content.startswith(f"Request {first.prefix.rsplit('Request ', 1)[1]}1-1:")


def test_it_only_loads_loopback_addresses() -> None:
    request = loadgen.Request("http://10.0.0.1:80/v1/chat/completions", {}, "", "", "x")
    with pytest.raises(ValueError):
        loadgen.run("python", request, 1, 0.1)


def _cell(target: str, stream: bool, concurrency: int, **values: float) -> dict[str, object]:
    base: dict[str, object] = {
        "target": target, "stream": stream, "concurrency": concurrency, "requests": 100, "sent": 100, "good": 100,
        "errors": 0, "seconds": 1.0, "p50_ms": 1.0, "p99_ms": 2.0, "cpu_ms_per_req": 1.0, "other_cores": 0.0,
        "redis_cpu_ms_per_req": 0.0, "postgres_cpu_ms_per_req": 0.0, "duration_s": 1.0, "round": 0,
    }  # fmt: skip
    return base | values


def _row_cells(target: str, p50: float, cpu_ms: float, stream_cpu: float) -> list[dict[str, object]]:
    return [
        _cell(target, False, 1, p50_ms=p50, cpu_ms_per_req=cpu_ms),
        _cell(target, False, 64, cpu_ms_per_req=cpu_ms),
        _cell(target, True, 1, p50_ms=p50, cpu_ms_per_req=stream_cpu),
        _cell(target, True, 64, cpu_ms_per_req=stream_cpu),
    ]


def test_it_takes_medians_over_rounds_and_sums_counts() -> None:
    cells = [
        _cell("portkey", False, 1, cpu_ms_per_req=v, good=g, round=r)
        for r, (v, g) in enumerate([(3.0, 10), (1.0, 20), (2.0, 30)])
    ]
    (merged,) = report.aggregate(cells)
    assert merged["cpu_ms_per_req"] == 2.0
    assert merged["good"] == 60
    assert merged["rounds"] == 3
    assert merged["cpu_ms_per_req_rounds"] == [3.0, 1.0, 2.0]
    assert merged["rps"] == 60 / 3.0


def test_it_ignores_a_round_without_answers_in_the_median() -> None:
    cells = [
        _cell("litellm", True, 64, cpu_ms_per_req=math.nan, good=0),
        _cell("litellm", True, 64, cpu_ms_per_req=5.0),
    ]
    (merged,) = report.aggregate(cells)
    assert merged["cpu_ms_per_req"] == 5.0


def test_it_judges_the_gateway_against_portkey() -> None:
    cells = (
        _row_cells("mock", 0.2, 0.1, 0.2)
        + _row_cells("portkey", 1.2, 2.0, 2.0)
        + _row_cells("gateway-uvicorn", 1.0, 1.5, 1.9)
    )
    summary = report.rows(cells, ["mock", "portkey", "gateway-uvicorn"], 64)
    assert [r["target"] for r in summary] == ["mock", "portkey", "gateway-uvicorn"]
    assert summary[1]["delta_p50_ms_c1"] == pytest.approx(1.0)
    assert math.isnan(float(summary[0]["delta_p50_ms_c1"]))
    (verdict,) = report.versus_portkey(summary)
    assert verdict["cpu_ms_ratio"] == pytest.approx(0.75)
    assert verdict["cpu_ok"] is True
    assert verdict["stream_cpu_ms_ratio"] == pytest.approx(0.95)
    assert verdict["stream_ok"] is True
    assert verdict["delta_ok"] is True
    lines = report.readme_lines([verdict], {"commit": "abc", "date": "d", "machine": "m", "concurrency": 64}, summary)
    assert any("0.75× Portkey's (target ≤ 0.8×: met)" in line for line in lines)


def test_it_says_not_met_when_the_gateway_costs_more() -> None:
    cells = _row_cells("mock", 0.2, 0.1, 0.2) + _row_cells("portkey", 1.0, 1.0, 1.0)
    cells += _row_cells("gateway-daphne", 3.0, 2.0, 1.5)
    (verdict,) = report.versus_portkey(report.rows(cells, ["mock", "portkey", "gateway-daphne"], 64))
    assert (verdict["cpu_ok"], verdict["stream_ok"], verdict["delta_ok"]) == (False, False, False)


def test_it_has_no_verdict_without_portkey() -> None:
    cells = _row_cells("mock", 0.2, 0.1, 0.2) + _row_cells("gateway-uvicorn", 1.0, 1.0, 1.0)
    assert report.versus_portkey(report.rows(cells, ["mock", "gateway-uvicorn"], 64)) == []


def test_it_names_cells_with_too_few_answers() -> None:
    notes = report.shortfalls([_cell("litellm", True, 64, good=0, sent=65, duration_s=20.0), _cell("mock", False, 1)])
    assert notes == [
        "`litellm` completed 0 20-chunk streams at concurrency 64 in round 1 (65 sent in 20 s): "
        "no CPU per request for that cell"
    ]


def test_it_shows_the_ratio_of_each_round() -> None:
    cells = []
    for number, (theirs, mine) in enumerate([(2.0, 1.0), (4.0, 3.0)]):
        cells += [
            _cell("portkey", False, 64, cpu_ms_per_req=theirs, round=number),
            _cell("gateway-uvicorn", False, 64, cpu_ms_per_req=mine, round=number),
        ]
    assert report.round_ratios(cells, "gateway-uvicorn", False, 64) == [0.5, 0.75]
    assert report.round_ratios(cells, "gateway-uvicorn", True, 64) == []
