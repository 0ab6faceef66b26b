"""Print docker/requirements.txt: the installed versions of meterstream's runtime dependency closure.

Run with the project's venv (`.venv/bin/python docker/lock.py > docker/requirements.txt`): it walks the
requirements of the installed `meterstream` distribution (extras left out, markers evaluated here) and pins each to
the version installed, so the image runs what the tests ran.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """\
# Runtime Python packages of the Docker image (Dockerfile: `pip install -r docker/requirements.txt`), pinned to
# the versions the development venv runs and the tests pass with: the closure of pyproject.toml's dependencies,
# without the test extras. Every compiled package here has a CPython 3.12 x86_64 manylinux wheel; crcmod, dill,
# docopt and hdfs come as sdists (pure Python). After a dependency change, regenerate from a fresh venv:
#   .venv/bin/python docker/lock.py > docker/requirements.txt
# (tests/unit/test_docker_compose.py checks that apache-flink here equals the installed one and that every
# dependency of pyproject.toml is pinned).
"""


def runtime_closure(root: str = "meterstream") -> dict[str, str]:
    pins: dict[str, str] = {}
    todo = [root]
    while todo:
        dist = metadata.distribution(todo.pop())
        name = canonicalize_name(dist.metadata["Name"])
        if name in pins:
            continue
        pins[name] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    pins.pop(canonicalize_name(root))
    return dict(sorted(pins.items()))


if __name__ == "__main__":
    print(HEADER + "".join(f"{name}=={version}\n" for name, version in runtime_closure().items()), end="")
