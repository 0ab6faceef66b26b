"""The uid lock: the billing job graph's operator uids equal the checked-in `jobs/operator_uids.txt`.

A uid change breaks restoring from savepoints; this test makes every such change a deliberate one. The graph is
built, never executed, in processes of their own (SQL plan node ids come from a JVM-wide counter), twice: the list
must not depend on the run. The Kafka bootstrap used for building does not resolve, so nothing connects.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import uids
from jobs.operator_uids import BUILD_ONLY_BOOTSTRAP, LOCK_FILE, REGENERATE, Graph, Node, difference, problems, render
from jobs.runtime import DEFAULT_MAX_PARALLELISM

pytestmark = pytest.mark.job

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built_twice() -> list[dict]:
    # Both builds at once: each is mostly JVM start-up and planning (~10 s).
    procs = [subprocess.Popen([sys.executable, "-m", "jobs.operator_uids", "--json"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-5000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _graph(result: dict) -> Graph:
    return Graph(nodes=[Node(**n) for n in result["nodes"]], env_max_parallelism=result["env_max_parallelism"])


def test_uids_are_the_same_in_every_build(built_twice):
    first, second = built_twice
    assert first["lock"] == second["lock"]
    # Built against a host name that cannot resolve (RFC 2606 .invalid): building opened no connection.
    assert BUILD_ONLY_BOOTSTRAP.split(":")[0].endswith(".invalid")


def test_every_operator_has_a_uid_and_max_parallelism_is_explicit(built_twice):
    graph = _graph(built_twice[0])
    assert problems(graph) == []
    assert graph.env_max_parallelism == DEFAULT_MAX_PARALLELISM  # -1 would mean "derived from the parallelism"
    assert {n.max_parallelism for n in graph.nodes} == {DEFAULT_MAX_PARALLELISM}
    # SQL operators carry uids too (table.exec.uid.generation=ALWAYS): sources, accounting; the keyed Java operators
    # (dedup + routing; windows, lateness, period to date + rating) carry ours.
    kinds = {uid.split("_", 1)[1] for uid in graph.uids if uid.split("_", 1)[0].isdigit()}
    assert {"source", "group-aggregate", "calc"} <= kinds
    assert {uids.BILLING_USAGE_ROUTING, uids.BILLING_WINDOW_RATING} <= set(graph.uids)
    # What goes without one is only PyFlink's own stateless plumbing (key_by and side-output maps).
    assert all(n.name in ("_stream_key_by_map_operator", "Map") for n in graph.pyflink_internal())


def test_uids_match_the_checked_in_list(built_twice):
    current = built_twice[0]["lock"]
    message = difference(LOCK_FILE.read_text(), current)
    assert message is None, message


def test_a_changed_uid_is_reported_with_what_to_do():
    def graph(*uids: str) -> Graph:
        return Graph(nodes=[Node(uid, f"op {uid}", DEFAULT_MAX_PARALLELISM, False) for uid in uids],
                     env_max_parallelism=DEFAULT_MAX_PARALLELISM)

    locked = render(graph("dedup-v1", "4_over-aggregate"))
    message = difference(locked, render(graph("dedup-v2", "4_over-aggregate")))
    assert message.startswith("operator uids changed: added ['dedup-v2'], removed ['dedup-v1']")
    assert "breaks savepoint compatibility" in message and REGENERATE in message
    assert difference(locked, locked) is None
    renamed = graph("dedup-v1", "4_over-aggregate")
    renamed.nodes[0] = Node("dedup-v1", "a new name", DEFAULT_MAX_PARALLELISM, False)
    assert "uids unchanged" in difference(locked, render(renamed))


def test_an_operator_without_uid_or_max_parallelism_is_a_problem():
    graph = Graph(nodes=[Node(None, "my-map", 128, False), Node(None, "Map", 128, False),
                         Node(None, "Map", 128, True), Node(None, "_stream_key_by_map_operator", 128, False)],
                  env_max_parallelism=-1)
    found = problems(graph)
    assert len(found) == 3, found  # my-map, the Map that is no side output, the implicit max parallelism
    assert any("'my-map'" in p for p in found) and any("max parallelism" in p for p in found)
