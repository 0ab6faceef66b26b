"""The Java rule constants (`io.meterstream.rules.Rules`) are generated from the Python source of truth
(`python -m udfs.java_rules`): the checked-in file is current, it carries every rule datum, and the Java sources
use it instead of literals of their own."""

from __future__ import annotations

import re

from schemas.dead_letter import DeadLetterReason
from schemas.usage_event import FIELD_ORDER, ID_MAX_LENGTH
from udfs import java_rules
from udfs.catalog import Aggregation
from udfs.validation import MAX_RECORD_BYTES

JAVA_MAIN = java_rules.JAVA_ROOT / "io" / "meterstream"
# Being changed by another engineer (issue 16, items 4 and 5); they still hold aggregation names of their own.
# Remove an entry once that file uses Rules.


def test_the_checked_in_rules_class_is_current():
    assert java_rules.main(["--check"]) == 0


def test_check_fails_when_the_file_drifts(tmp_path, monkeypatch):
    stale = tmp_path / "Rules.java"
    stale.write_text(java_rules.java_source().replace("= 65536;", "= 65537;"), encoding="utf-8")
    monkeypatch.setattr(java_rules, "RULES_PATH", stale)
    assert java_rules.main(["--check"]) == 1
    assert java_rules.main(["--write"]) == 0
    assert java_rules.main(["--check"]) == 0


def test_every_reason_is_generated_at_its_precedence():
    source = java_rules.java_source()
    for index, reason in enumerate(DeadLetterReason):
        assert f"public static final int REASON_{reason.name} = {index};" in source
    codes = re.search(r"REASON_CODES = \{(.*)\};", source).group(1)
    assert codes == ", ".join(f'"{reason.value}"' for reason in DeadLetterReason)


def test_limits_fields_aggregations_and_models_come_from_python():
    source = java_rules.java_source()
    assert f"MAX_RECORD_BYTES = {MAX_RECORD_BYTES};" in source
    assert f"ID_MAX_LENGTH = {ID_MAX_LENGTH};" in source
    for index, field in enumerate(FIELD_ORDER):
        assert f"FIELD_{field.upper()} = {index};" in source
    for name in Aggregation.__args__:
        assert f'AGGREGATION_{name.upper()} = "{name}";' in source
    for name in ("per_unit", "package", "graduated", "volume"):
        assert f'PRICE_MODEL_{name.upper()} = "{name}";' in source
    assert "DEFAULT_MAX_AGE_MS = 3024000000L;" in source  # 35 days


def _literals() -> dict[str, str]:
    """Each rule datum that is a string, to the Rules constant that holds it."""
    names = {reason.value: f"REASON_{reason.name}" for reason in DeadLetterReason}
    names.update({name: f"AGGREGATION_{name.upper()}" for name in Aggregation.__args__})
    names.update({name: f"PRICE_MODEL_{name.upper()}" for name in ("per_unit", "package", "graduated", "volume")})
    names.update({"java-catalog-v2": "JAVA_CATALOG_FORMAT",
                  "7605a076-ac45-5316-afe8-45e0991fb188": "LINE_ITEM_NAMESPACE"})
    return names


def test_java_sources_use_the_generated_constants_not_literals():
    literals = _literals()
    found = []
    for path in sorted(JAVA_MAIN.rglob("*.java")):
        relative = path.relative_to(JAVA_MAIN).as_posix()
        if relative == "rules/Rules.java":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//", 1)[0]
            if code.lstrip().startswith("*"):
                continue  # javadoc prose
            for literal in re.findall(r'"([^"\\]*)"', code):
                if literal in literals:
                    found.append(f"{relative}:{number}: \"{literal}\" (use Rules.{literals[literal]})")
    assert found == []

