"""The uid lock: every operator uid of the billing job graph, checked in as `jobs/operator_uids.txt`.

A uid is the identity of an operator's state in a savepoint: a uid that changes unnoticed makes a restore fail
(or, with --allowNonRestoredState, silently drop dedup, period-to-date or credit state). This module builds the
graph that `jobs.billing.run` builds (with --credits and the Kafka sinks) WITHOUT executing it, and lists the uids
of its stream nodes: our DataStream uids (`jobs/uids.py`), the SQL operators' uids (`table.exec.uid.generation =
ALWAYS`: `<plan node id>_<kind>`, stable while the SQL and its order are) and the sinks' derived committer uids.

    python -m jobs.operator_uids            # print what the graph has now
    python -m jobs.operator_uids --check    # exit 1 with the difference if it is not the checked-in list
    python -m jobs.operator_uids --write    # regenerate jobs/operator_uids.txt (an intended, breaking change)
    python -m jobs.operator_uids --json     # the graph's nodes as JSON (for tests)

Nothing connects to Kafka while building: the bootstrap below need not (and cannot) resolve. Run it in a process of
its own: the planner numbers plan nodes with a JVM-wide counter, so a second build in the same JVM (as in a test
session that already built pipelines) numbers the SQL operators differently. `flink run` and `python -m
jobs.billing` each build in a fresh client JVM, which is what the list describes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_FILE = Path(__file__).resolve().with_name("operator_uids.txt")
# Never contacted: building a graph opens no connection (a reserved, unresolvable name proves it).
BUILD_ONLY_BOOTSTRAP = "build-only.invalid:9092"
REGENERATE = "python -m jobs.operator_uids --write"

# Nodes PyFlink inserts itself and that take no uid through its API. Both are stateless identity/key-extraction
# maps, so their generated ids may change without losing state (Flink skips empty operator state on restore).
PYFLINK_KEY_BY_MAP = "_stream_key_by_map_operator"  # before every key_by; KeyedStream.uid() raises
PYFLINK_SIDE_OUTPUT_MAP = "Map"  # DataStream.get_side_output() = getSideOutput + an identity map


@dataclass(frozen=True)
class Node:
    uid: str | None
    name: str
    max_parallelism: int
    side_output_input: bool  # every input edge carries an output tag (a side output)


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    env_max_parallelism: int

    @property
    def uids(self) -> dict[str, str]:
        """uid -> operator name, for nodes that have one."""
        return {n.uid: n.name for n in self.nodes if n.uid}

    def unexplained_without_uid(self) -> list[Node]:
        return [n for n in self.nodes if not n.uid and not _pyflink_internal(n)]

    def pyflink_internal(self) -> list[Node]:
        return [n for n in self.nodes if not n.uid and _pyflink_internal(n)]


def _pyflink_internal(node: Node) -> bool:
    return node.name == PYFLINK_KEY_BY_MAP or (node.name == PYFLINK_SIDE_OUTPUT_MAP and node.side_output_input)


@contextlib.contextmanager
def _execute_captured() -> Iterator[dict]:
    """While active, `StreamExecutionEnvironment.execute` records its environment and stops instead of running.

    This way the list describes exactly what `jobs.billing.run` builds (new sinks or stages included), without a
    copy of its wiring here that could drift from it.
    """
    from pyflink.datastream import StreamExecutionEnvironment

    captured: dict = {}
    original = StreamExecutionEnvironment.execute

    def capture(self, job_name=None):
        captured["env"] = self
        raise _Built

    StreamExecutionEnvironment.execute = capture
    try:
        yield captured
    finally:
        StreamExecutionEnvironment.execute = original


class _Built(Exception):
    pass


def build_graph() -> Graph:
    """The billing job's stream graph as `run` builds it (streaming, --credits, Kafka sinks), not executed."""
    from jobs.billing import BillingSettings, Topics, run
    from meterstream.paths import project_home

    settings = BillingSettings(
        catalog_yaml=(project_home() / "catalogs" / "example-genai.yaml").read_text(), run_id="uid-lock"
    )
    with _execute_captured() as captured, contextlib.suppress(_Built):
        run(bootstrap=BUILD_ONLY_BOOTSTRAP, topics=Topics(), settings=settings, bounded=False, parallelism=2,
            credits=True)
    if "env" not in captured:
        raise RuntimeError("jobs.billing.run returned without calling env.execute(): nothing to inspect")
    env = captured["env"]
    stream_graph = env._j_stream_execution_environment.getStreamGraph(False)
    nodes = []
    for j_node in sorted(stream_graph.getStreamNodes().toArray(), key=lambda n: n.getId()):
        edges = list(j_node.getInEdges().toArray())
        nodes.append(Node(
            uid=j_node.getTransformationUID(),
            name=j_node.getOperatorName(),
            max_parallelism=j_node.getMaxParallelism(),
            side_output_input=bool(edges) and all(e.getOutputTag() is not None for e in edges),
        ))
    return Graph(nodes=nodes, env_max_parallelism=env.get_max_parallelism())


def render(graph: Graph) -> str:
    """The lock file: sorted uids, each with its operator name as a comment."""
    header = [
        "# Operator uids of the billing job graph (jobs.billing.run with --credits and the Kafka sinks), sorted.",
        "# A uid is the identity of an operator's state in savepoints and checkpoints: a change here breaks",
        "# restoring from earlier savepoints (README: Upgrading with savepoints).",
        f"# Generated by `{REGENERATE}`; checked by tests/job/test_operator_uids.py.",
    ]
    width = max(len(uid) for uid in graph.uids)
    body = [f"{uid:<{width}}  # {name}" for uid, name in sorted(graph.uids.items())]
    internal = sorted({n.name for n in graph.pyflink_internal()})
    footer = [f"# Not listed (PyFlink-internal, stateless, no uid API): {len(graph.pyflink_internal())} nodes "
              f"named {', '.join(internal)}."] if internal else []
    return "\n".join([*header, *body, *footer]) + "\n"


def parse(text: str) -> dict[str, str]:
    """uid -> operator name from a lock file."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        uid, _, name = line.partition("  # ")
        out[uid.rstrip()] = name.strip()
    return out


def problems(graph: Graph) -> list[str]:
    """What makes the graph unfit for savepoints whatever the lock says: nodes without uid, implicit max parallelism."""
    from jobs.runtime import DEFAULT_MAX_PARALLELISM

    found = [f"operator without uid: {n.name!r} (set .uid() from jobs/uids.py; SQL operators get one from "
             "table.exec.uid.generation=ALWAYS)" for n in graph.unexplained_without_uid()]
    if graph.env_max_parallelism != DEFAULT_MAX_PARALLELISM:
        found.append(f"max parallelism of the environment is {graph.env_max_parallelism}, not the explicit "
                     f"{DEFAULT_MAX_PARALLELISM} (jobs/runtime.py)")
    odd = sorted({n.name for n in graph.nodes if n.max_parallelism not in (DEFAULT_MAX_PARALLELISM,)})
    if odd:
        found.append(f"operators whose max parallelism is not {DEFAULT_MAX_PARALLELISM}: {odd}")
    return found


def difference(locked_text: str, current_text: str) -> str | None:
    """None when they agree; else the message to show (uid changes first: those break savepoints)."""
    locked, current = parse(locked_text), parse(current_text)
    added, removed = sorted(set(current) - set(locked)), sorted(set(locked) - set(current))
    if added or removed:
        return (
            f"operator uids changed: added {added}, removed {removed}; if intended, this breaks savepoint "
            "compatibility: bump the version suffix of the changed operators' uids in jobs/uids.py (state of a "
            "removed uid is lost: restoring then needs --allowNonRestoredState), say so in the release notes, "
            f"and regenerate with {REGENERATE}"
        )
    if locked_text != current_text:
        renamed = sorted(uid for uid in current if current[uid] != locked.get(uid))
        return (f"operator uids unchanged, but the lock file differs (names of {renamed} or its comments); "
                f"savepoints are not affected: regenerate with {REGENERATE}")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"regenerate {LOCK_FILE.name}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 if the graph differs from {LOCK_FILE.name}")
    mode.add_argument("--json", action="store_true", help="the graph's nodes as JSON")
    args = parser.parse_args(argv)

    graph = build_graph()
    if args.json:
        print(json.dumps({"env_max_parallelism": graph.env_max_parallelism,
                          "nodes": [asdict(n) for n in graph.nodes], "lock": render(graph)}))
        return 0
    found = problems(graph)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    if found:
        return 1
    text = render(graph)
    if args.write:
        LOCK_FILE.write_text(text)
        print(f"wrote {len(graph.uids)} operator uids to {LOCK_FILE}")
        return 0
    if args.check:
        message = difference(LOCK_FILE.read_text() if LOCK_FILE.exists() else "", text)
        if message:
            print(message, file=sys.stderr)
            return 1
        print(f"{len(graph.uids)} operator uids match {LOCK_FILE.name}")
        return 0
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
