"""The runtime in simulated time: models loaded once on core groups, many
host threads, statuses, contention, load generators, DataParallel, bench.
This process simulates inf1.xlarge (one chip, cores 0-3); multi-chip cases
run in a subprocess (one instance per process)."""
import json
import threading

import numpy as np
import pytest
import torch

import infsim
from helpers import to_onnx
from infsim import runtime
from infsim.compiler import compile_model


def mlp_exe(seed, batch=2, width=256, dtype="bf16"):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(width, 2 * width), torch.nn.ReLU(), torch.nn.Linear(2 * width, 64))
    proto, _ = to_onnx(net, (torch.randn(batch, width),))
    return compile_model(proto, dtype=dtype)


@pytest.fixture(scope="module")
def exes():
    return {"a": mlp_exe(1), "b": mlp_exe(2, batch=4, width=384)}


@pytest.fixture
def rt():
    r = runtime.Runtime("inf1.xlarge")
    yield r
    assert r._rt.used_cores() == [], "a test left a model loaded"


def feeds(exe, seed):
    rng = np.random.default_rng(seed)
    return {t["name"]: rng.standard_normal(t["shape"]).astype(np.float32) for t in exe.tensors if t["kind"] == "input"}


def solo(exe, inputs):
    return runtime.run(exe, inputs)


def test_loaded_model_matches_solo_run_and_places_constants_once(rt, exes):
    exe = exes["a"]
    x = feeds(exe, 0)
    ref, ref_stats = solo(exe, x)
    m = rt.load(exe, cores=[2])
    try:
        before = rt.counters()
        outs = [m(x) for _ in range(3)]
        after = rt.counters()
    finally:
        m.unload()
    for o in outs:
        np.testing.assert_array_equal(o["output"] if "output" in o else list(o.values())[0], list(ref.values())[0])
    # Requests move only inputs and outputs over the host link, never the constants.
    io = sum(t["elements"] if "elements" in t else int(np.prod(t["shape"])) * 4 for t in exe.tensors)
    sent = after["link"]["host-chip0"]["bytes"] - before["link"]["host-chip0"]["bytes"]
    got = after["link"]["chip0-host"]["bytes"] - before["link"]["chip0-host"]["bytes"]
    assert sent == 3 * sum(a.nbytes for a in x.values())
    assert got == 3 * sum(v.nbytes for v in ref.values())
    assert sent + got <= 3 * io


def test_eight_threads_two_models_and_a_swap(rt, exes):
    """8 host threads x 12 requests over 2 models; model a is swapped for a
    new version half way. Every request answered once, bits as a serial run."""
    a, b = exes["a"], exes["b"]
    inputs = {(k, i): feeds(exes[k], 100 * (k == "b") + i) for k in "ab" for i in range(6)}
    serial = {key: solo(exes[key[0]], x)[0] for key, x in inputs.items()}
    ma = rt.load(a, cores=[0], name="a-v1")
    mb = rt.load(b, cores=[1, 2], name="b")
    ma2 = rt.load(a, cores=[3], name="a-v2")
    results, lock, started = [], threading.Lock(), threading.Barrier(8)
    swap_done = threading.Event()

    def client(t):
        started.wait()
        for j in range(12):
            key = ("a" if (t + j) % 2 else "b", (t * 12 + j) % 6)
            if t == 0 and j == 6:
                ma.swap_to(ma2)
                swap_done.set()
            fut = (ma if key[0] == "a" else mb).submit(inputs[key])
            rec = fut.record(timeout=120)
            with lock:
                results.append((key, rec, fut.result()))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert swap_done.is_set()
        assert len(results) == 96
        assert len({r["id"] for _, r, _ in results}) == 96  # answered exactly once each
        assert all(r["status"] == "NRT_SUCCESS" for _, r, _ in results)
        for key, _, out in results:
            for n, v in serial[key].items():
                np.testing.assert_array_equal(out[n], v)
        # After the swap, model a's requests ran on the new version (core 3).
        served_by = {r["model"] for key, r, _ in results if key[0] == "a"}
        assert served_by == {ma.id, ma2.id}
        assert ma.id not in rt._rt.models()
    finally:
        mb.unload()
        ma2.unload()


def test_contention_on_a_shared_dram_channel(rt, exes):
    """Cores 0 and 1 share DRAM channel 0: two replicas each see a higher
    latency than one alone, and the channel's counters are the sum of the
    requests'."""
    exe = exes["b"]
    x = feeds(exe, 3)
    m1 = rt.load(exe, cores=[0], timing_only=True)
    c0 = rt.counters()
    alone = rt.run_workload([{"model": m1, "inputs": x, "workers": 1, "requests": 6}])
    c1 = rt.counters()
    m1.unload()
    m2 = rt.load(exe, cores=[0, 1], timing_only=True)
    both = rt.run_workload([{"model": m2, "inputs": x, "workers": 2, "requests": 12}])
    c2 = rt.counters()
    m2.unload()
    ch = lambda c, k: c["chip0"]["dram"]["channel0"][k]  # noqa: E731
    per_request = {k: (ch(c1, k) - ch(c0, k)) / 6 for k in ("read_bytes", "write_bytes")}
    assert per_request["read_bytes"] > 0
    for k, v in per_request.items():
        assert ch(c2, k) - ch(c1, k) == 12 * v
    solo_latency = min(r["end_s"] - r["start_s"] for r in alone["results"])
    by_replica = {0: [], 1: []}
    for r in both["results"]:
        by_replica[r["replica"]].append(r["end_s"] - r["start_s"])
    for lat in by_replica.values():
        assert lat and min(lat[1:]) > solo_latency


def test_two_models_at_once_give_their_solo_bits(rt, exes):
    xa, xb = feeds(exes["a"], 5), feeds(exes["b"], 6)
    (ra, sa), (rb, sb) = solo(exes["a"], xa), solo(exes["b"], xb)
    ma, mb = rt.load(exes["a"], cores=[0]), rt.load(exes["b"], cores=[2])
    try:
        w = rt.run_workload([{"model": ma, "inputs": xa, "workers": 2, "requests": 5, "keep_outputs": True},
                             {"model": mb, "inputs": xb, "workers": 2, "requests": 5, "keep_outputs": True}])
    finally:
        ma.unload()
        mb.unload()
    assert len(w["results"]) == 10
    for r in w["results"]:
        exe, ref, st = (exes["a"], ra, sa) if r["model"] == ma.id else (exes["b"], rb, sb)
        outs = runtime.unpack(r["outputs"], {t["name"]: t for t in exe.tensors})
        for n, v in ref.items():
            np.testing.assert_array_equal(outs[n], v)
        # Never meaningfully faster than alone: the DRAM's open rows left by the request
        # before may save a few cycles, contention only adds.
        assert r["device_cycles"] >= 0.99 * st["total_cycles"]
        assert r["end_s"] - r["arrival_s"] >= st["simulated_seconds"]


def test_statuses(rt, exes):
    exe = exes["a"]
    x = feeds(exe, 0)
    m = rt.load(exe, cores=[0], queue_depth=2, timeout_s=20e-6)
    try:
        bad = m.submit({"nope": x[list(x)[0]]})
        with pytest.raises(runtime.RequestError, match="NRT_EXEC_BAD_INPUT"):
            bad.result()
        missing = runtime.Future(rt._rt.submit(m.id, {}, True), m)
        assert missing.record()["status"] == "NRT_EXEC_BAD_INPUT"
        # Six at once into a queue of two that times out after 20 us: some are refused, the late ones time out.
        w = rt.run_workload([{"model": m, "inputs": x, "rate": 1e9, "requests": 6, "seed": 1}])
        statuses = [r["status"] for r in w["results"]]
        assert "NRT_QUEUE_FULL" in statuses and "NRT_TIMEOUT" in statuses
        nan = dict(x)
        nan[list(x)[0]] = np.full_like(x[list(x)[0]], np.nan)
        with pytest.raises(runtime.RequestError, match="NRT_EXEC_COMPLETED_WITH_NUM_ERR") as e:
            runtime.Future(rt._rt.submit(m.id, m.raw_inputs(nan), True), m).result()
        assert e.value.outputs  # the outputs come back with the status
    finally:
        m.unload()
    gone = runtime.Future(rt._rt.submit(m.id, m.raw_inputs(x), True), m)
    assert gone.record()["status"] == "NRT_INVALID_HANDLE"
    with pytest.raises(runtime.RunError, match="NRT_LOAD_NOT_ENOUGH_NC"):
        rt.load(exe, replicas=5)
    held = rt.load(exe, cores="0-3")
    try:
        with pytest.raises(runtime.RunError, match="NRT_LOAD_NOT_ENOUGH_NC"):
            rt.load(exe)
    finally:
        held.unload()


def test_load_generators_are_deterministic(rt, exes):
    m = rt.load(exes["a"], replicas=2, timing_only=True)
    x = feeds(exes["a"], 0)
    try:
        runs = [rt.run_workload([{"model": m, "inputs": x, "rate": 20000, "requests": 30, "seed": 4}])
                for _ in range(2)]
        trace = rt.run_workload([{"model": m, "inputs": x, "trace": [0, 1e-4, 1e-4, 3e-4]}])
        # Requests arriving many simulated seconds in, at times no double holds exactly.
        late = rt.run_workload([{"model": m, "inputs": x, "trace": sorted(3 + 7 * np.random.default_rng(2).random(40))}])
    finally:
        m.unload()
    ps = lambda t, w: round((t - w["start_s"]) * 1e12)  # noqa: E731  (picoseconds from the workload's start)
    shape = lambda w: [(ps(r["arrival_s"], w), ps(r["end_s"], w), r["replica"], r["device_cycles"])  # noqa: E731
                       for r in sorted(w["results"], key=lambda r: r["id"])]
    a, b = shape(runs[0]), shape(runs[1])
    # Same arrivals, replicas and device cycles; the ends agree to within the
    # links' clock phase (their cycles count from time 0, and the second
    # workload starts at another simulated time).
    assert len(a) == 30 and [(p[0], p[2], p[3]) for p in a] == [(p[0], p[2], p[3]) for p in b]
    assert max(abs(p[1] - q[1]) for p, q in zip(a, b)) < 2000
    arrivals = sorted(round((r["arrival_s"] - trace["start_s"]) * 1e6, 3) for r in trace["results"])
    assert arrivals == [0, 100, 100, 300]
    assert [r["status"] for r in late["results"]] == ["NRT_SUCCESS"] * 40


def test_data_parallel_scatters_and_gathers_in_order(rt, exes):
    exe = exes["a"]  # compiled for batch 2
    x = np.random.default_rng(9).standard_normal((7, 256)).astype(np.float32)
    ref = np.concatenate([list(solo(exe, {"input": x[i:i + 2] if i + 2 <= 7 else
                                          np.concatenate([x[i:], np.zeros((1, 256), np.float32)])})[0].values())[0]
                          for i in range(0, 7, 2)])[:7] if "input" in {t["name"] for t in exe.tensors} else None
    dp = infsim.DataParallel(exe)
    try:
        y = dp(torch.from_numpy(x))
        assert isinstance(y, torch.Tensor) and tuple(y.shape) == (7, 64)
        if ref is not None:
            np.testing.assert_array_equal(y.numpy(), ref)
        assert dp.device_ids == [0, 1, 2, 3]
        recs = dp.last_records
        assert len(recs) == 4 and {r["replica"] for r in recs} == {0, 1, 2, 3}
        # Concurrent: every chunk started before any finished.
        assert max(r["start_s"] for r in recs) < min(r["end_s"] for r in recs)
    finally:
        dp.unload()


def test_bench_rows_follow_neuronperf(tmp_path, run_cli):
    out = tmp_path / "r.json"
    p = run_cli("bench", "mlp", "--n-models", "1,4", "--workers-per-model", "1", "--requests", "40",
                "--timing-only", "--json", out, "--requests-csv", tmp_path / "q.csv", "--profile", tmp_path / "p.json")
    trace = json.loads((tmp_path / "p.json").read_text())["traceEvents"]  # the first configuration: 1 replica
    assert sum(e["ph"] == "b" for e in trace) == 41 == sum(e["ph"] == "e" for e in trace)  # 40 + 1 warm-up
    assert {e["args"]["name"] for e in trace if e.get("name") == "process_name"} == \
        {"chip0.core0", "links", "host", "chip0.dram"}
    rows = json.loads(out.read_text())
    assert [r["n_models"] for r in rows] == [1, 4]
    for r in rows:
        for col in ("model_filename", "instance_type", "n_models", "workers_per_model", "pipeline_size",
                    "batch_size", "throughput_avg", "latency_ms_p0", "latency_ms_p50", "latency_ms_p90",
                    "latency_ms_p95", "latency_ms_p99", "latency_ms_p100", "total_infs", "total_s",
                    "cost_per_1m_inf", "wall_s"):
            assert col in r
        assert r["total_infs"] == 40 * r["batch_size"] and r["failed"] == 0
        assert r["cost_per_1m_inf"] == pytest.approx(0.228 * 1e6 / (3600 * r["throughput_avg"]))
        assert r["latency_ms_p0"] <= r["latency_ms_p50"] <= r["latency_ms_p99"] <= r["latency_ms_p100"]
    assert rows[1]["throughput_avg"] > 1.5 * rows[0]["throughput_avg"]
    lines = (tmp_path / "q.csv").read_text().splitlines()
    assert lines[0].startswith("config,id,replica,status") and len(lines) == 81


def test_multi_chip_instance_spreads_replicas(tmp_path, run_cli):
    """inf1.6xlarge: 16 replicas over four chips; every chip's DRAM works."""
    out = tmp_path / "r.json"
    run_cli("bench", "mlp", "--instance", "inf1.6xlarge", "--n-models", "4,16", "--workers-per-model", "1",
            "--requests", "64", "--timing-only", "--json", out)
    rows = json.loads(out.read_text())
    four, sixteen = rows
    assert 3.0 < sixteen["throughput_avg"] / four["throughput_avg"] < 4.4
    for chip in ("chip0", "chip1", "chip2", "chip3"):
        dram = sixteen["counters"][chip]["dram"]
        assert sum(c["read_bytes"] for c in dram.values()) > 0


def test_bundle_host_steps_take_simulated_time_on_the_vcpus(rt):
    """A bundle (device, host Xor, device) served on groups of two cores: the
    host step runs on a vCPU for the CPU time measured at load."""
    from test_python_api import XorNet
    net = XorNet().eval()
    x = torch.randn(4, 32)
    bundle = infsim.trace(net, x, dtype="fp32").executable
    ref, _ = runtime.run(bundle, {"x": x.numpy()})
    m = rt.load(bundle)  # groups of 2 cores: cores 0-1 and 2-3
    try:
        assert m.groups == [0, 2] and len(m.host_seconds) == 1 and m.host_seconds[0] > 0
        fut = m.submit({"x": x.numpy()})
        np.testing.assert_array_equal(fut.result()["output"], ref["output"])
        rec = fut.record()
        assert rec["host_s"] == pytest.approx(m.host_seconds[0], rel=1e-9)
        assert rec["end_s"] - rec["arrival_s"] > rec["host_s"] and rec["device_cycles"] > 0
        w = rt.run_workload([{"model": m, "inputs": {"x": x.numpy()}, "workers": 4, "requests": 8}])
        assert {r["replica"] for r in w["results"]} == {0, 1}
        assert all(r["status"] == "NRT_SUCCESS" for r in w["results"])
    finally:
        m.unload()


def test_server_side_batching_coalesces_requests(rt):
    exe = mlp_exe(3, batch=4)
    rows = np.random.default_rng(5).standard_normal((6, 256)).astype(np.float32)
    name = [t["name"] for t in exe.tensors if t["kind"] == "input"][0]
    out_name = [t["name"] for t in exe.tensors if t["kind"] == "output"][0]
    first = solo(exe, {name: rows[:4]})[0][out_name]
    second = solo(exe, {name: np.concatenate([rows[4:], np.zeros((2, 256), np.float32)])})[0][out_name]
    m = rt.load(exe, replicas=1, max_delay_s=50e-6)
    try:
        assert m.batch == 4 and m.inputs[name]["shape"] == [1, 256]
        futs = m.submit_all([{name: rows[i:i + 1]} for i in range(6)])
        outs = [f.result()[out_name] for f in futs]
        recs = [f.record() for f in futs]
    finally:
        m.unload()
    for i in range(4):
        np.testing.assert_array_equal(outs[i][0], first[i])
    for i in range(2):
        np.testing.assert_array_equal(outs[4 + i][0], second[i])
    # Two device runs: the first four together, then the last two.
    assert len({r["device_done_s"] for r in recs[:4]}) == 1 and len({r["device_done_s"] for r in recs[4:]}) == 1
    assert recs[4]["start_s"] >= recs[0]["device_done_s"]
    with pytest.raises(runtime.RunError, match="leading batch dimension"):  # a batch of 2 cannot divide 3 rows
        rt._rt.load(mlp_exe(4, batch=3), [0], "odd", False, 1.0, 16, 2, 1e-5)


def test_bench_replays_a_bundled_arrival_trace(tmp_path, run_cli):
    from conftest import ROOT
    out = tmp_path / "t.json"
    run_cli("bench", "mlp", "--n-models", "4", "--trace", f"{ROOT}/traces/bursty_1k.txt", "--timing-only",
            "--json", out)
    [row] = json.loads(out.read_text())
    assert row["total_infs"] == 1000 * row["batch_size"] and row["failed"] == 0 and row["workers_per_model"] == 0
    bad = tmp_path / "bad.txt"
    bad.write_text("0.5\n0.1\n")
    p = run_cli("bench", "mlp", "--trace", bad, check=False)
    assert p.returncode == 1 and "in order" in p.stderr and "Traceback" not in p.stderr


def remote_roundtrip_program(chip, offset=0x1000):
    """Core 0 writes x to chip `chip`'s DRAM by fabric address, reads it back, outputs it."""
    from infsim import _infsim
    from infsim.isa import dram, onchip
    from infsim.program import ProgramBuilder
    x = np.arange(4 * 64, dtype=np.float32).reshape(4, 64)
    h = ProgramBuilder()
    a = h.input("x", x)
    back = h.alloc(4, 64)
    far = _infsim.FABRIC_BASE + chip * _infsim.CHIP_WINDOW + offset
    out = h.exe.add_dma(onchip(a), dram(far, "fp32", 4, 64, [(64, 1)]))
    h.prog.emit("dma2", "dma_copy", {"desc": out, "count": 1}, waits=[("in", h.loaded)], signal="done_dma2")
    ret = h.exe.add_dma(dram(far, "fp32", 4, 64, [(64, 1)]), onchip(back))
    h.prog.emit("dma3", "dma_copy", {"desc": ret, "count": 1}, waits=[("done_dma2", 1)], signal="done_dma3")
    h.output("y", back, "dma3")
    return h.finish(), x


def test_dma_to_another_chip_across_the_links():
    exe, x = remote_roundtrip_program(chip=2)
    r = runtime.run_raw(exe, {"x": x.tobytes()}, "inf1", False, "inf1.6xlarge")  # a worker process: 4 chips
    np.testing.assert_array_equal(np.frombuffer(r["outputs"]["y"], np.float32).reshape(4, 64), x)
    links = {(p, n): v for p, n, _, _, v in r["counters"] if p.startswith("link.chip")}
    # The write crosses 0-1 and 1-2; the read's data comes back 2-1 and 1-0.
    for hop in ("chip0-chip1", "chip1-chip2", "chip2-chip1", "chip1-chip0"):
        assert links[(f"link.{hop}", "bytes")] == x.nbytes, hop
        assert links[(f"link.{hop}", "busy_cycles")] == x.nbytes // 16
    assert links[("link.chip2-chip3", "bytes")] == 0
    dram2 = {n: v for p, n, _, _, v in r["counters"] if p == "chip2.dram.channel0"}
    assert dram2["write_bytes"] == x.nbytes and dram2["read_bytes"] == x.nbytes
    # inf1.xlarge has no chip 2: the queue faults, the runtime answers NRT_HW_ERROR.
    with pytest.raises(runtime.RunError, match="device fault.*dma2.*failed"):
        runtime.run_raw(exe, {"x": x.tobytes()}, "inf1")


def test_run_profile_trace_matches_the_stats(tmp_path, run_cli, exes):
    """`infsim run --profile`: one slice per instruction, per engine as many
    as its instruction counter, named by opcode, on chip0.core0."""
    exe = exes["b"]
    exe.save(str(tmp_path / "m.infx"))
    np.savez(tmp_path / "in.npz", **feeds(exe, 1))
    run_cli("run", tmp_path / "m.infx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "o.npz",
            "--stats", tmp_path / "s.json", "--profile", tmp_path / "t.json")
    stats = json.loads((tmp_path / "s.json").read_text())
    trace = json.loads((tmp_path / "t.json").read_text())
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == {"chip0.core0", "links", "chip0.dram"}
    threads = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name" and e["pid"] == 0}
    threads_all = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "instruction"]
    core = stats["counters"]["chip0"]["core0"]
    for tid, engine in threads.items():
        assert sum(e["tid"] == tid for e in slices) == core[engine]["instructions"], engine
    assert {"dma_copy", "end_of_program"} <= {e["name"] for e in slices}
    first = min(e["args"]["start_cycle"] for e in slices)
    last = max(e["args"]["end_cycle"] for e in slices)
    # Cycles are numbered on the clock's grid from time 0; the doorbell need not fall on an edge.
    assert last - first <= stats["total_cycles"] + 1 and all(e["dur"] >= 0 for e in slices)
    assert trace["otherData"]["events_dropped"] == 0
    # The host link's lanes: the inputs in, the outputs out, with their bytes.
    moved = {}
    for e in trace["traceEvents"]:
        if e.get("cat") == "link":
            moved[threads_all[(e["pid"], e["tid"])]] = moved.get(threads_all[(e["pid"], e["tid"])], 0) + e["args"]["bytes"]
    assert moved == {"link.host-chip0": stats["counters"]["link"]["host-chip0"]["bytes"],
                     "link.chip0-host": stats["counters"]["link"]["chip0-host"]["bytes"]}
    # The DRAM counter track: 1 us bins whose bytes add up to the channel's counters.
    bins = [e for e in trace["traceEvents"] if e["ph"] == "C" and e["name"] == "channel0 GB/s"]
    channel = stats["counters"]["chip0"]["dram"]["channel0"]
    assert sum(e["args"]["GB/s"] * 1e3 for e in bins) == pytest.approx(channel["read_bytes"] + channel["write_bytes"])
    run_cli("run", tmp_path / "m.infx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "o.npz",
            "--profile", tmp_path / "t2.json", "--profile-limit", "10")
    small = json.loads((tmp_path / "t2.json").read_text())
    assert sum(e["ph"] == "X" for e in small["traceEvents"]) == 10 and small["otherData"]["events_dropped"] > 0


def test_profile_summary_follows_neuron_profile(tmp_path, run_cli, exes):
    exe = exes["b"]
    exe.save(str(tmp_path / "m.infx"))
    np.savez(tmp_path / "in.npz", **feeds(exe, 1))
    p = run_cli("profile", tmp_path / "m.infx", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "t.json",
                "--stats", tmp_path / "s.json", "--summary-json", tmp_path / "sum.json")
    s = json.loads((tmp_path / "sum.json").read_text())
    stats = json.loads((tmp_path / "s.json").read_text())
    core = stats["counters"]["chip0"]["core0"]
    assert s["total_time"] == stats["simulated_seconds"] and "mfu_estimated_percent" in p.stdout
    assert s["dram_read_bytes"] == sum(c["read_bytes"] for c in stats["counters"]["chip0"]["dram"].values())
    for engine, v in s["engines"].items():
        assert v["instruction_count"] == core[engine]["instructions"]
        assert 0 <= v["active_time_percent"] <= 100
    assert 0 < s["dma_active_time_percent"] <= 100 and 0 < s["mfu_estimated_percent"] < 100
    assert s["top_ops"] and all(r["bound"] in ("tensor", "vector", "scalar", "DMA/DRAM", "waiting") for r in s["top_ops"])
    assert all(r["time_us"] <= s["total_time"] * 1e6 + 1e-6 for r in s["top_ops"])


def test_monitor_writes_neuron_monitor_periods(tmp_path, run_cli):
    out = tmp_path / "m.jsonl"
    run_cli("monitor", "mlp", "--n-models", "2", "--workers-per-model", "2", "--requests", "120", "--timing-only",
            "--period", "0.001", "-o", out)
    lines = [json.loads(ln) for ln in out.read_text().splitlines()]
    periods, final = lines[:-1], lines[-1]
    assert final["cumulative"] and len(periods) >= 3
    stats = lambda o: o["neuron_runtime_data"][0]["report"]["execution_stats"]  # noqa: E731
    assert stats(final)["execution_summary"]["completed"] == 120
    assert sum(stats(p)["execution_summary"]["completed"] for p in periods) == 120
    for p in periods:
        cores = p["neuron_runtime_data"][0]["report"]["neuroncore_counters"]["neuroncores_in_use"]
        assert set(cores) <= {"0", "1"} and all(0 < c["neuroncore_utilization"] <= 100 for c in cores.values())
        lat = stats(p)["latency_stats"]["total_latency"]
        assert lat["p0"] is None or lat["p0"] <= lat["p50"] <= lat["p100"]
    assert final["neuron_hardware_info"] == {"neuron_device_count": 1, "neuroncore_per_device_count": 4, "error": ""}
    used = final["neuron_runtime_data"][0]["report"]["memory_used"]["neuron_runtime_used_bytes"]["neuron_device"]
    assert used > 0
