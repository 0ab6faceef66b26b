"""The passthrough transform on a MiniCluster, at parallelism 1 and 2."""

from __future__ import annotations

import pytest
from pyflink.common import Types

from jobs.passthrough import build_pipeline
from jobs.runtime import stream_environment

pytestmark = pytest.mark.job


@pytest.mark.parametrize("parallelism", [1, 2])
def test_transform_keeps_every_record(parallelism):
    env = stream_environment(parallelism=parallelism)
    records = [f'  {{"seq": {i}}}\n' for i in range(500)]
    stream = env.from_collection(records, type_info=Types.STRING())
    with build_pipeline(stream).execute_and_collect() as results:
        out = list(results)
    assert sorted(out) == sorted(r.strip() for r in records)
