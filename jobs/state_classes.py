"""The pickled-state lock: every Python class stored pickled in Flink state, named here, with a checked-in
fingerprint (`jobs/state_classes.txt`) of each class's module path, qualified name and fields.

Why: `Types.PICKLED_BYTE_ARRAY()` state holds `pickle.dumps(value)`. A pickle names each class by module and
qualified name and restores an object's attributes without calling its constructor: moving a class to another
module makes a restore fail, and renaming, adding or retyping a field restores old objects that lack the field or
hold the old type, silently. Either breaks savepoints while every test that starts from empty state stays green.

    python -m jobs.state_classes            # print the fingerprints as they are now
    python -m jobs.state_classes --check    # exit 1, saying what changed and what to do, if they differ from the lock
    python -m jobs.state_classes --write    # regenerate jobs/state_classes.txt (after bumping the state name)

`PICKLED_STATES` below is the one place that says which state stores which type. The classes reachable from it
are found by walking the declared field types (dataclass fields, pydantic model fields, generic arguments,
unions); `runtime_types` names what a field typed `Any` holds. Every `Types.PICKLED_BYTE_ARRAY()` state
descriptor in `jobs/*.py` must use a state name listed here (`problems` reads their code), and
`tests/unit/test_state_classes.py` pickles realistic states and checks that every class in the bytes is covered.

A change of a stored class needs one of: a new state name (bump the `-vN` of the state in `jobs/uids.py`, or the
uid of its operator: state under the old identity is then not restored, the operator starts that state empty, so
say so in the release notes), or that plus a migration that reads the old pickles under the old name (listed in
`MIGRATED_STATES`) and moves them over. Then regenerate the lock with `--write`.
Records that only travel between operators pickled (the validated grant events, `jobs/credits.py`) are not in
checkpoints (aligned checkpoints, the default here, hold no in-flight records) and are not listed.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import hashlib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from jobs import lock_file, uids
from udfs.aggregations import LastObservation
from udfs.corrections import RetainedWindows
from udfs.credits.event_order import Pending
from udfs.credits.ledger import CustomerCredits
from udfs.line_items import SeriesPeriods

LOCK_FILE = Path(__file__).resolve().with_name("state_classes.txt")
JOBS_DIR = Path(__file__).resolve().parent
REGENERATE = "python -m jobs.state_classes --write"

# Modules whose classes are values, not structures we own: their pickled form is the library's promise
# (`pydantic.types` holds annotation markers such as AwareDatetime: the values are plain datetimes).
LIBRARY_MODULES = frozenset({"builtins", "datetime", "decimal", "collections.abc", "typing", "pydantic.types"})


@dataclass(frozen=True)
class PickledState:
    state_name: str  # the state descriptor's name (jobs/uids.py): the state's identity in savepoints
    operator_uid: str  # the operator that holds it (jobs/uids.py)
    stored: object  # the type of the value stored
    runtime_types: tuple[type, ...] = ()  # classes held by fields typed `Any`


PICKLED_STATES: tuple[PickledState, ...] = (
    # PeriodState.quantity_state is the aggregator's period accumulator: Decimal, frozenset[str] or
    # (window_start, LastObservation) (udfs/aggregations.py, `period_initialize`).
    PickledState(uids.PERIOD_TO_DATE_STATE, uids.BILLING_PERIOD_TO_DATE, SeriesPeriods,
                 runtime_types=(LastObservation,)),
    # RetainedWindows.frozen holds period accumulators (frozenset[str] for unique_count, the one series kind that
    # retains in Python); WindowContents.members (value, multiplicity) pairs of str values.
    PickledState(uids.PERIOD_TO_DATE_CONTENTS_STATE, uids.BILLING_PERIOD_TO_DATE, RetainedWindows,
                 runtime_types=(LastObservation,)),
    PickledState(uids.CUSTOMER_CREDITS_STATE, uids.CREDITS_LEDGER, CustomerCredits),
    PickledState(uids.CUSTOMER_CREDITS_PENDING_STATE, uids.CREDITS_LEDGER, Pending),
)

# States read only to migrate what earlier versions wrote (their pickles hold the classes as they were then; the
# reader moves them to the current state, `jobs/billing_functions.py` and `jobs/credits.py`): never written, so not
# fingerprinted.
MIGRATED_STATES = frozenset({
    uids.PERIOD_TO_DATE_STATE_V1, uids.PERIOD_TO_DATE_CONTENTS_STATE_V1, uids.CUSTOMER_CREDITS_STATE_V1,
    uids.CUSTOMER_CREDITS_PENDING_STATE_V1,
    uids.CUSTOMER_CREDITS_PENDING_STATE_V2,
})


def qualified_name(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def type_text(tp: object) -> str:
    """A declared type as stable text: classes by module path, generics with their arguments."""
    if tp is type(None):
        return "None"
    if tp is typing.Any:
        return "Any"
    if tp is Ellipsis:
        return "..."
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(arg) for arg in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(arg) for arg in args)}]"
    if origin is not None:
        return f"{type_text(origin)}[{', '.join(type_text(arg) for arg in args)}]"
    if isinstance(tp, type):
        return qualified_name(tp)
    return repr(tp)


def _fields(cls: type) -> list[tuple[str, object]] | None:
    """(name, declared type) of a class whose instances pickle as their fields; None for a plain value class."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]
    if issubclass(cls, BaseModel):
        return [(name, info.annotation) for name, info in cls.model_fields.items()]
    return None


def _kind(cls: type) -> str:
    if issubclass(cls, enum.Enum):
        return "enum"
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    if issubclass(cls, BaseModel):
        return "pydantic"
    return "class"


def classes_in(tp: object) -> Iterator[type]:
    """The classes a declared type names, outermost first (generic origins and arguments, union members)."""
    if isinstance(tp, type) and typing.get_origin(tp) is None:
        yield tp
        return
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return
    if isinstance(origin, type) and origin is not types.UnionType:
        yield origin
    for arg in typing.get_args(tp):
        yield from classes_in(arg)


def reachable(state: PickledState) -> list[type]:
    """Every class a stored value can hold that is not a library value type, in a stable order."""
    seen: dict[str, type] = {}
    todo = [*classes_in(state.stored), *state.runtime_types]
    while todo:
        cls = todo.pop(0)
        if cls.__module__ in LIBRARY_MODULES or qualified_name(cls) in seen:
            continue
        seen[qualified_name(cls)] = cls
        for _, declared in _fields(cls) or ():
            todo.extend(classes_in(declared))
    return [seen[name] for name in sorted(seen)]


def class_block(cls: type) -> list[str]:
    """One class's fingerprint lines: module path, qualified name, kind, then its fields (or enum members)."""
    lines = [f"  class {qualified_name(cls)} ({_kind(cls)})"]
    if issubclass(cls, enum.Enum):
        lines += [f"    {member.name} = {member.value!r}" for member in cls]
    else:
        lines += [f"    {name}: {type_text(declared)}" for name, declared in _fields(cls) or ()]
    return lines


def state_block(state: PickledState) -> list[str]:
    body = [line for cls in reachable(state) for line in class_block(cls)]
    digest = hashlib.sha256("\n".join(body).encode()).hexdigest()[:16]
    head = (f"state {state.state_name}  operator {state.operator_uid}  stores {type_text(state.stored)}  "
            f"sha256 {digest}")
    return [head, *body]


def render(states: tuple[PickledState, ...] = PICKLED_STATES) -> str:
    header = [
        "# Classes pickled into Flink state (jobs/state_classes.py PICKLED_STATES) and their fields, per state name.",
        "# A pickle names a class by module path and restores its fields as they were written: a change here breaks",
        "# restoring earlier savepoints. Bump the state name in jobs/uids.py (or write a migration), then regenerate.",
        f"# Generated by `{REGENERATE}`; checked by `python -m jobs.state_classes --check` (./dev test) and",
        "# tests/unit/test_state_classes.py.",
    ]
    return "\n".join([*header, *(line for state in states for line in state_block(state))]) + "\n"


def parse(text: str) -> dict[str, list[str]]:
    """`operator uid/state name` (the state's identity in a savepoint) -> its lines (head first) from a lock file."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("state "):
            words = line.split()
            current = blocks.setdefault(f"{words[3]}/{words[1]}", [])
        elif line.startswith("#") or not line.strip() or current is None:
            continue
        current.append(line)
    return blocks


def _classes(block: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in block[1:]:
        if line.startswith("  class "):
            name = line.split()[1]
            out[name] = [line]
        else:
            out[name].append(line)
    return out


def difference(locked_text: str, current_text: str) -> str | None:
    """None when they agree; else what changed and what to do about it."""
    locked, current = parse(locked_text), parse(current_text)
    messages = []
    for name in sorted(set(locked) & set(current)):
        if locked[name][1:] == current[name][1:]:
            continue
        before, after = _classes(locked[name]), _classes(current[name])
        changed = sorted(c for c in set(before) & set(after) if before[c] != after[c])
        messages.append(
            f"the classes pickled into state {name!r} (operator uid/state name) changed without a new state name "
            f"(added "
            f"{sorted(set(after) - set(before))}, removed {sorted(set(before) - set(after))}, fields changed in "
            f"{changed}): a restore from an earlier savepoint would fail or load objects of the old shape. Bump the "
            f"state name in jobs/uids.py (the next -vN, or the operator's uid; that state then starts empty after an "
            f"upgrade: say so in the release notes) or write a migration that reads the old pickles, and "
            f"regenerate with {REGENERATE}"
        )
    added, removed = sorted(set(current) - set(locked)), sorted(set(locked) - set(current))
    if added or removed:
        messages.append(f"pickled states (operator uid/state name) new since the lock: {added}, gone: {removed} (a "
                        f"bumped state name or operator uid, a new or a removed pickled state): if intended, "
                        f"regenerate with {REGENERATE}")
    if not messages and locked_text != current_text:
        messages.append(f"the pickled classes are unchanged, but the lock file differs (stored type, digest or "
                        f"comments): regenerate with {REGENERATE}")
    return "\n".join(messages) or None


def pickled_states_in_code(directory: Path = JOBS_DIR) -> list[tuple[str, int, str | None]]:
    """(file, line, `jobs/uids.py` constant or None) of every call in `directory/*.py` that passes
    `Types.PICKLED_BYTE_ARRAY()` as a positional argument (a state descriptor, or a helper that makes one) together
    with its state name: `uids.NAME` among the positional arguments, None when the name is anything else."""

    def is_pickled(node: ast.expr) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "PICKLED_BYTE_ARRAY")

    def uids_constant(node: ast.expr) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "uids":
            return node.attr
        return None

    found = []
    for path in sorted(directory.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and any(is_pickled(arg) for arg in node.args):
                names = [name for name in map(uids_constant, node.args) if name]
                found.append((path.name, node.lineno, names[0] if names else None))
    return sorted(found)


def problems(states: tuple[PickledState, ...] = PICKLED_STATES, directory: Path = JOBS_DIR) -> list[str]:
    """What makes the list itself wrong, whatever the lock says."""
    registered = {state.state_name for state in states} | MIGRATED_STATES
    found = []
    for file, line, constant in pickled_states_in_code(directory):
        if constant is None:
            found.append(f"{file}:{line}: a Types.PICKLED_BYTE_ARRAY() state whose name is not a jobs/uids.py "
                         "constant: name it there (uids.NAME) and list it in jobs/state_classes.py PICKLED_STATES")
        elif getattr(uids, constant, None) not in registered:
            found.append(f"{file}:{line}: state {constant} (= {getattr(uids, constant, '?')!r}) is stored with "
                         "Types.PICKLED_BYTE_ARRAY() but not listed in jobs/state_classes.py PICKLED_STATES")
    for state in states:
        for cls in reachable(state):
            if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
                found.append(f"state {state.state_name}: {qualified_name(cls)} cannot be pickled by reference "
                             "(define it at module level in an importable module)")
            elif _kind(cls) == "class":
                found.append(f"state {state.state_name}: {qualified_name(cls)} is neither a dataclass, a pydantic "
                             "model nor an enum: its fields cannot be fingerprinted")
    return found


def main(argv: list[str] | None = None) -> int:
    args = lock_file.arguments(__doc__, LOCK_FILE, what="a class").parse_args(argv)

    return lock_file.run(LOCK_FILE, render, problems=problems(), difference=difference,
                         summary=f"the pickled classes of {len(PICKLED_STATES)} states", write=args.write,
                         check=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
