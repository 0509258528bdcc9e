"""The checkpoint-failover demo (``make demo``) tells its story: the run survives the
primary's outage on the standby, and after the fail-back both hold the same history."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples import checkpoint_failover

STEPS = ["receive", "check_stock", "charge", "ship"]


def test_demo_survives_the_outage_and_fails_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = checkpoint_failover.main(tmp_path)
    out = capsys.readouterr().out

    assert [order["log"] for order in result["orders"]] == [STEPS, STEPS, STEPS]
    status = result["status"]
    assert status.active == "primary"
    assert status.failovers == 1
    assert status.pending_threads == ()
    assert result["same_history"] is True
    # the story, in order: failover during order 1, fail-back before order 3
    assert out.index("!! failover") < out.index("order 2") < out.index("ok fail-back")
    assert "ConnectionError" in out
