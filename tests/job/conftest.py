"""Job tier: real Flink (embedded MiniCluster) on bounded inputs, no Kafka."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.job
