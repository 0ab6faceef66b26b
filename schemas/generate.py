"""Write (or, with --check, verify) `schemas/json/<topic>.schema.json` for every topic in the registry.

    python -m schemas.generate          # regenerate
    python -m schemas.generate --check  # exit 1 when a checked-in schema differs from the models

The output is deterministic (sorted keys, two-space indent, trailing newline) so it diffs cleanly and CI can
fail on drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.topics import TOPICS, TopicSpec

JSON_DIR = Path(__file__).resolve().parent / "json"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_for(spec: TopicSpec) -> dict[str, Any]:
    # Validation mode: the schema describes what a producer may send (for output topics the two coincide,
    # because their wire types carry an explicit JSON Schema).
    schema = spec.model.model_json_schema(mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = f"meterstream/{spec.name}.schema.json"
    schema["title"] = spec.name
    schema["description"] = spec.description
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    return {JSON_DIR / f"{name}.schema.json": render(schema_for(spec)) for name, spec in TOPICS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file differs instead of writing")
    args = parser.parse_args(argv)
    expected = expected_files()
    if args.check:
        stale = [p for p, text in expected.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        known = set(expected)
        extra = [p for p in JSON_DIR.glob("*.schema.json") if p not in known]
        for path in stale:
            print(f"out of date: {path.relative_to(JSON_DIR.parent.parent)}", file=sys.stderr)
        for path in extra:
            print(f"no topic for: {path.relative_to(JSON_DIR.parent.parent)}", file=sys.stderr)
        if stale or extra:
            print("run: python -m schemas.generate", file=sys.stderr)
            return 1
        return 0
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in expected.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
