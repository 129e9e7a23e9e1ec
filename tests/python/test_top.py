"""infsim top (neuron-top on the simulator): its plain snapshot off a
terminal, a monitor stream as its input, and the live view in a
pseudo-terminal (tmux): 'f' switches to TFLOPS, 'q' quits."""
import json
import shutil
import subprocess
import time

import pytest

from conftest import BIN


def test_top_prints_one_plain_snapshot_off_a_terminal(run_cli):
    out = run_cli("top", "mlp", "--n-models", "2", "--requests", "200", "--timing-only").stdout
    assert "\x1b[" not in out  # plain text
    for word in ("inf1.xlarge", "nc0", "nc1", "util %", "constants", "model_code", "mlp", "completed"):
        assert word in out, out
    # Both replicas' cores were busy in the last period; the other two idle.
    util = {}
    for line in out.splitlines():  # the cores' table comes first (then memory, per core too)
        if line.strip().startswith("│  nc") and line.split()[1] not in util:
            util[line.split()[1]] = float(line.split("│")[2])
    assert util["nc0"] > 10 and util["nc1"] > 10 and util["nc2"] == util["nc3"] == 0, util


def test_top_reads_a_monitor_stream(run_cli, tmp_path):
    stream = tmp_path / "m.jsonl"
    run_cli("monitor", "mlp", "--requests", "100", "--timing-only", "--period", "0.002", "-o", stream)
    objs = [json.loads(line) for line in stream.read_text().splitlines()]
    cores = objs[-2]["neuron_runtime_data"][0]["report"]["neuroncore_counters"]["neuroncores_in_use"]
    out = run_cli("top", "--input", stream, "--flops").stdout
    assert "TFLOPS" in out and f"{cores['0']['flops'] / 1e12:.3f}" in out, out
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    p = run_cli("top", "--input", bad, check=False)
    assert p.returncode == 1 and "not a monitor JSON line" in p.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (setup.sh installs it)")
def test_top_runs_live_in_a_pseudo_terminal(tmp_path):
    session = f"infsim-top-{id(tmp_path)}"
    done = tmp_path / "exited"

    def screen():
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def wait_for(cond, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            s = screen()
            if cond(s):
                return s
            time.sleep(0.5)
        raise AssertionError(f"timed out; the screen:\n{screen()}")

    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "130", "-y", "50",
                    f"{BIN} top mlp --timing-only; touch {done}; sleep 60"], check=True)
    try:
        first = wait_for(lambda s: "util %" in s and "nc0" in s)
        assert "q: quit" in first
        subprocess.run(["tmux", "send-keys", "-t", session, "f"], check=True)
        wait_for(lambda s: "TFLOPS" in s)
        # The simulated time moves on while it runs.
        t0 = [ln for ln in screen().splitlines() if "simulated" in ln][0]
        wait_for(lambda s: [ln for ln in s.splitlines() if "simulated" in ln][:1] != [t0])
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        end = time.time() + 30
        while not done.exists() and time.time() < end:
            time.sleep(0.2)
        assert done.exists(), screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_monitor_serves_prometheus_metrics_on_loopback(tmp_path):
    """monitor --prometheus PORT: the same figures as its JSON, scraped over HTTP."""
    import socket
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "m.jsonl"
    p = subprocess.Popen([BIN, "monitor", "mlp", "--n-models", "2", "--requests", "100", "--timing-only",
                          "-o", str(out), "--prometheus", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()  # once serving the run's figures
        assert "serving Prometheus metrics" in line, line + p.stderr.read()
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        p.terminate()
        p.wait(timeout=30)
    metrics = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            name, value = ln.rsplit(" ", 1)
            metrics[name] = float(value)
    objs = [json.loads(x) for x in out.read_text().splitlines()]
    final = objs[-1]["neuron_runtime_data"][0]["report"]
    assert metrics['execution_status_total{status_type="completed"}'] == \
        final["execution_stats"]["execution_summary"]["completed"] >= 100
    last = objs[-2]["neuron_runtime_data"][0]["report"]["neuroncore_counters"]["neuroncores_in_use"]
    assert metrics['neuroncore_utilization_ratio{neuroncore="1"}'] == pytest.approx(
        last["1"]["neuroncore_utilization"] / 100)
    assert metrics['neuroncore_memory_usage_bytes{memory_type="constants",neuroncore="0"}'] > 0
    assert 'neuron_hardware_info{neuron_device_count="1",neuroncore_per_device_count="4"}' in metrics
