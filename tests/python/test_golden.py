"""The reference models' profile summaries against traces/golden/ (refresh
with traces/golden.py --refresh when a change is meant to move them)."""
import os
import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "traces"))
import golden  # noqa: E402


def test_profile_summaries_match_the_golden_ones():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "traces", "golden.py")], capture_output=True, text=True,
                       timeout=1200)
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_changed_field_is_named():
    old = {"total_cycles": 10, "engines": {"tensor": {"instruction_count": 3}}, "top_ops": [{"time_us": 1.0}]}
    new = {"total_cycles": 11, "engines": {"tensor": {"instruction_count": 3}}, "top_ops": [{"time_us": 1.5}]}
    assert golden.differences(old, new) == ["top_ops[0].time_us: 1.0 -> 1.5", "total_cycles: 10 -> 11"]
    assert golden.differences(old, old) == []
    assert golden.differences({"t": 288.4177920000002}, {"t": 288.4177919999993}) == []  # float rounding only
