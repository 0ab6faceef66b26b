"""Throughput of the Java PARSE_USAGE_EVENT: JSON lines from a filesystem `raw` source into a blackhole sink.

Not a test. `python benchmarks/parse_udf_bench.py [--events 1000000] [--parallelism 2]`.
Generates events matching `catalogs/example-genai.yaml` (about 2 % rejects of assorted kinds) once into
/tmp/meterstream-bench/, then runs three jobs on the same input and prints events/s for each:
  baseline  : source -> CHAR_LENGTH(payload) -> blackhole (startup, file reading, the sink)
  parse     : source -> PARSE_USAGE_EVENT, all 12 columns -> blackhole
  parse-x2  : the same plus a second call site (what a watermark computed column adds; the per-thread memo)
The difference between baseline and parse is the function's cost.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from meterstream.jars import engine_jar  # noqa: E402
from udfs.catalog import load_catalog  # noqa: E402
from udfs.java_catalog import java_catalog_json  # noqa: E402

OUT_DIR = Path("/tmp/meterstream-bench")
COLUMNS = (
    "reason, detail, event_id, tenant_id, customer_id, meter, event_time_ms, `value`, aggregation, group_json, "
    "unique_token, fingerprint"
)


def generate(path: Path, count: int, seed: int = 7) -> None:
    catalog = load_catalog(ROOT / "catalogs" / "example-genai.yaml")
    rng = random.Random(seed)
    meters = [(t, m, spec) for t, tenant in catalog.tenants.items() for m, spec in tenant.meters.items()]
    now = datetime.now(UTC)
    dims = {"model": ["nova-large", "nova-small", "nova-mini"], "gpu_type": ["h100", "a100", "l4"]}
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            tenant, meter, spec = rng.choice(meters)
            ts = now - timedelta(seconds=rng.randint(0, 3 * 86_400))
            obj: dict = {
                "event_id": f"evt-{i:09d}",
                "tenant_id": tenant,
                "customer_id": f"cust-{rng.randint(1, 5000)}",
                "meter": meter,
                "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                if i % 3
                else int(ts.timestamp() * 1000),
            }
            if spec.aggregation not in {"count", "unique_count"}:
                obj["value"] = str(rng.randint(1, 50_000)) if i % 2 else f"{rng.random() * 100:.6f}"
            d = {key: rng.choice(dims[key]) for key in spec.group_by}
            if spec.unique_dimension:
                d[spec.unique_dimension] = f"user-{rng.randint(1, 100_000)}"
            d["region"] = rng.choice(["eu-west-1", "us-east-1"])
            obj["dimensions"] = d
            if i % 50 == 0:  # ~2 % rejects
                kind = (i // 50) % 4
                if kind == 0:
                    obj["value"] = "-1"
                elif kind == 1:
                    obj["tenant_id"] = "globex"
                elif kind == 2:
                    obj["timestamp"] = "2026-02-30T00:00:00Z"
                else:
                    obj.pop("customer_id")
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--only", choices=["baseline", "parse", "parse-x2"])
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"events-{args.events}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, args.events)
        print(f"generated {args.events} events in {time.perf_counter() - t0:.1f} s -> {path}")
    catalog = load_catalog(ROOT / "catalogs" / "example-genai.yaml")
    cat = java_catalog_json(catalog).replace("'", "''")
    call = f"PARSE_USAGE_EVENT(payload, '{cat}', CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT))"
    cols = ", ".join("`" + c.strip("`") + "` " + t for c, t in zip(COLUMNS.split(", "), _types(), strict=True))
    projected = ", ".join(f"p.{c}" for c in COLUMNS.split(", "))
    sink_parse = f"CREATE TEMPORARY TABLE sink ({cols}) WITH ('connector' = 'blackhole')"
    jobs = {
        "baseline": (
            "CREATE TEMPORARY TABLE sink (n INT) WITH ('connector' = 'blackhole')",
            "INSERT INTO sink SELECT CHAR_LENGTH(CAST(payload AS STRING)) FROM src",
        ),
        "parse": (sink_parse, f"INSERT INTO sink SELECT {projected} FROM (SELECT {call} AS p FROM src)"),
        "parse-x2": (
            sink_parse,
            f"INSERT INTO sink SELECT {projected} FROM (SELECT payload, {call} AS p FROM src) "
            f"WHERE {call}.event_time_ms IS NOT NULL OR p.reason IS NOT NULL",
        ),
    }
    for name, (ddl, sql) in jobs.items():
        if args.only and name != args.only:
            continue
        seconds = run_with_sink(ddl, sql, path, args.parallelism)
        print(f"{name:9s}: {args.events} events in {seconds:6.1f} s = {args.events / seconds:10,.0f} ev/s")


def run_with_sink(ddl: str, sql: str, path: Path, parallelism: int) -> float:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    config.set("table.local-time-zone", "UTC")
    config.set("pipeline.jars", engine_jar().as_uri())
    config.set("parallelism.default", str(parallelism))
    t_env.create_java_temporary_system_function("PARSE_USAGE_EVENT", "io.meterstream.validation.ParseUsageEvent")
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE src (payload BYTES) WITH ("
        f"'connector' = 'filesystem', 'path' = '{path}', 'format' = 'raw')"
    )
    t_env.execute_sql(ddl)
    started = time.perf_counter()
    t_env.execute_sql(sql).wait()
    return time.perf_counter() - started


def _types() -> list[str]:
    return [
        "STRING", "STRING", "STRING", "STRING", "STRING", "STRING", "BIGINT", "DECIMAL(38, 18)",
        "STRING", "STRING", "STRING", "STRING",
    ]


if __name__ == "__main__":
    main()
