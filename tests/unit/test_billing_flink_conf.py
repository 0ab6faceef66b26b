"""`--flink-conf KEY=VALUE`: per-run Flink options (restore paths, checkpoint retention in the chaos harness)."""

from __future__ import annotations

import pytest

from jobs.billing import flink_conf_options, parse_args


def test_pairs_become_options_and_values_keep_their_equals_signs():
    args = parse_args(["--bootstrap", "b", "--flink-conf", "execution.state-recovery.path=file:///x/chk-7",
                       "--flink-conf", " a.b = c=d "])
    assert flink_conf_options(args.flink_conf) == {
        "execution.state-recovery.path": "file:///x/chk-7", "a.b": "c=d",
    }


@pytest.mark.parametrize("bad", ["no-equals", "=value"])
def test_a_pair_without_a_key_is_a_clear_error(bad):
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        flink_conf_options([bad])
