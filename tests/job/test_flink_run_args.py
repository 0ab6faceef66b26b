"""What `flink run` hands the Python program: exactly the job's arguments, nothing of its own. The billing job parses
strictly (`jobs.runtime.main_args`, `FLINK_RUN_EXTRA_ARGS` is empty); if a Flink upgrade starts passing arguments of
its own, this test says which, and they must be tolerated there by name.

Runs the wheel's client with a probe script instead of the job: the client starts the Python program before any
job exists, so no cluster is needed (the client fails afterwards, finding no job to submit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meterstream.cluster import _script
from meterstream.paths import project_home

pytestmark = pytest.mark.job

PROBE = """import json
from jobs.runtime import main_args
print("MAIN_ARGS " + json.dumps(main_args(None)), flush=True)
"""


@pytest.mark.parametrize("entry", ["--python", "--pyModule"])
def test_flink_run_passes_only_the_job_arguments(tmp_path: Path, entry: str):
    (tmp_path / "probe_main_args.py").write_text(PROBE)
    job_args = ["--bootstrap", "127.0.0.1:9", "--bounded", "--catalog", "catalogs/example-genai.yaml",
                "--parallelism", "2", "--flink-conf", "a=b"]
    target = str(tmp_path / "probe_main_args.py") if entry == "--python" else "probe_main_args"
    cmd = [_script("flink"), "run", "--detached", "-m", "127.0.0.1:9", "--parallelism", "2", entry, target,
           "--pyFiles", str(tmp_path), *job_args]
    env = {**os.environ, "FLINK_LOG_DIR": str(tmp_path),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "PYTHONPATH": os.pathsep.join([str(project_home()), str(tmp_path)])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MAIN_ARGS ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads(lines[0].removeprefix("MAIN_ARGS ")) == job_args
