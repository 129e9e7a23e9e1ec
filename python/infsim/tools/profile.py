"""Profile timelines: the events the simulator recorded (traces/recorder.h)
written as Chrome trace-event JSON ({"traceEvents": [...]}), which the
Perfetto UI and chrome://tracing open.

Processes are cores ("chip0.core0", pid = global core number), threads are
engines ("tensor", "vector", "scalar", "dma0", ...). A process "chipN.dram" has a counter
track per DRAM channel (GB/s in 1 us bins). A process "links" has a
thread per link direction ("link.host-chip0", "link.chip0-chip1") with a
"transfer" slice per transfer (args: bytes). Every instruction is an
"X" slice named by its opcode, with args: instruction index, source ONNX
node, and its start and end in core clock cycles (the core's reference
clock, counted from the start of the simulation). Semaphore waits are
slices of their own ("semaphore wait", category "wait"). Each request is an
async span from arrival to end on the "host" process. Times are in
microseconds of simulated time.
"""
import json

def _link_tid(name):
    """A stable thread id per link direction ("link.host-chip0", "link.chip0-chip1", ...)."""
    ends = [-1 if e == "host" else int(e[4:]) for e in name[5:].split("-")]
    return 1000 + (ends[0] + 1) * 100 + ends[1] + 1


def engine_tid(name):
    order = ["tensor", "vector", "scalar"]
    return order.index(name) if name in order else 3 + int(name[3:])


def chrome_trace(events, dropped, placements, period_fs, cores_per_chip, records=(), tracks=None, bin_fs=None):
    """events: stop_trace()'s tuples; placements: {(chip, core): (executable,
    image core)} for naming instructions; period_fs: the core clock period;
    tracks, bin_fs: stop_trace()'s counter tracks (DRAM bytes per bin)."""
    code = {}  # (chip, core, engine) -> (opcode per pc, source op per pc)
    for (chip, core), (exe, image_core) in placements.items():
        for c, phase, engine, lines, ops in exe.all_streams:
            if c == image_core:
                code[(chip, core, phase, engine)] = ([ln.split()[0] for ln in lines],
                                                     [exe.source_ops[o] for o in ops])
    out, seen = [], set()
    links = -2  # the process of the link lanes: a thread per direction
    for start, end, chip, core, engine, pc, kind, *phase in events:  # (a link transfer has no phase)
        if kind == "link_transfer":
            name = f"link.{chip}-{core}"
            if links not in seen:
                seen.add(links)
                out.append({"ph": "M", "name": "process_name", "pid": links, "args": {"name": "links"}})
            tid = _link_tid(name)
            if (links, tid) not in seen:
                seen.add((links, tid))
                out.append({"ph": "M", "name": "thread_name", "pid": links, "tid": tid, "args": {"name": name}})
            out.append({"ph": "X", "pid": links, "tid": tid, "ts": start / 1e9, "dur": (end - start) / 1e9,
                        "name": "transfer", "cat": "link", "args": {"bytes": pc}})
            continue
        pid = chip * cores_per_chip + core
        tid = engine_tid(engine)
        if pid not in seen:
            seen.add(pid)
            out.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": f"chip{chip}.core{core}"}})
            out.append({"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}})
        if (pid, tid) not in seen:
            seen.add((pid, tid))
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": engine}})
        ops, srcs = code.get((chip, core, phase[0], engine), ([], []))
        ev = {"ph": "X", "pid": pid, "tid": tid, "ts": start / 1e9, "dur": (end - start) / 1e9,
              "args": {"pc": pc, "program": phase[0], "start_cycle": round(start / period_fs),
                       "end_cycle": round(end / period_fs)}}
        if pc < len(srcs):
            ev["args"]["source_op"] = srcs[pc]
        if kind == "instruction":
            ev.update(name=ops[pc] if pc < len(ops) else "instruction", cat="instruction")
        else:
            ev.update(name="semaphore wait", cat="wait")
        out.append(ev)
    for name, bins in sorted((tracks or {}).items()):
        # "chip0.dram.channel0": a counter per channel on the chip's "chip0.dram" process, in GB/s.
        owner, _, series = name.rpartition(".")
        pid = -10 - int(owner.split(".")[0][4:])
        if pid not in seen:
            seen.add(pid)
            out.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": owner}})
        seconds = bin_fs * 1e-15
        for i, (start, amount) in enumerate(bins):
            out.append({"ph": "C", "pid": pid, "name": f"{series} GB/s", "ts": start / 1e9,
                        "args": {"GB/s": amount / seconds / 1e9}})
            if i + 1 == len(bins) or bins[i + 1][0] != start + bin_fs:  # idle until the next bin
                out.append({"ph": "C", "pid": pid, "name": f"{series} GB/s", "ts": (start + bin_fs) / 1e9,
                            "args": {"GB/s": 0.0}})
    host = -1
    if records:
        out.append({"ph": "M", "name": "process_name", "pid": host, "args": {"name": "host"}})
    for r in records:
        span = {"cat": "request", "name": f"request {r['id']}", "id": r["id"], "pid": host, "tid": 0}
        out.append(dict(span, ph="b", ts=r["arrival_s"] * 1e6, args={"status": r["status"], "replica": r["replica"]}))
        out.append(dict(span, ph="e", ts=r["end_s"] * 1e6))
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"events_dropped": dropped, "source": "infsim (simulated time)"}}


def profile_run(exe, inputs, instance="inf1.xlarge", config=None, timing_only=False, limit=1000000):
    """One run of `exe` with its timeline recorded: (outputs, stats, trace)."""
    from .. import _infsim, runtime
    if not isinstance(exe, _infsim.Executable):
        raise runtime.RunError("--profile of a model with host steps is not supported yet")
    config = config or runtime.metadata(exe).get("target", "inf1")
    rt = _infsim.Runtime.get(instance, config)
    rt.start_trace(limit)
    outputs, stats = runtime.run(exe, inputs, instance=instance, config=config, timing_only=timing_only)
    events, dropped, tracks, bin_fs = rt.stop_trace()
    cfg = _infsim.config(config)
    trace = chrome_trace(events, dropped, {(0, c): (exe, c) for c in range(exe.num_cores)},
                         1e9 / float(cfg["tensor_clock_mhz"]), int(cfg["cores"]), tracks=tracks, bin_fs=bin_fs)
    return outputs, stats, trace


def write(path, trace):
    with open(path, "w") as f:
        json.dump(trace, f)


def summary(trace, stats) -> dict:
    """neuron-profile's summary of one run: totals from the counters, times
    from the trace's slices (docs/user-guide.md, infsim profile)."""
    seconds = stats["simulated_seconds"]
    cycles = stats["total_cycles"]
    chips = {k: v for k, v in stats["counters"].items() if k.startswith("chip")}
    dram = [ch for chip in chips.values() for ch in chip.get("dram", {}).values()]
    out = {"total_time": seconds, "total_cycles": cycles,
           "dram_read_bytes": sum(c["read_bytes"] for c in dram),
           "dram_write_bytes": sum(c["write_bytes"] for c in dram)}
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] in ("instruction", "wait")]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"}
    used = sorted({e["pid"] for e in slices})
    cores = {}
    for chip_name, chip in chips.items():
        for core_name, engines in chip.items():
            if core_name.startswith("core"):
                cores[f"{chip_name}.{core_name}"] = engines
    pid_names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "process_name"}
    working = [pid_names[p] for p in used if p in pid_names and pid_names[p] in cores]
    busy_cores = [cores[n] for n in working]
    # The tensor engines' utilisation (stats' derived figures), averaged over the working cores.
    utilization = [stats["derived"].get(f"{n}.tensor.utilization", 0.0) for n in working]
    out["mfu_estimated_percent"] = 100 * sum(utilization) / max(1, len(utilization))
    # DMA active: the union of every DMA queue's instruction slices, over the run.
    active = _union([(e["ts"], e["ts"] + e["dur"]) for e in slices
                     if e["cat"] == "instruction" and names.get((e["pid"], e["tid"]), "").startswith("dma")])
    out["dma_active_time_percent"] = 100 * active / (seconds * 1e6) if seconds else 0.0
    engines = {}
    for c in busy_cores:
        for engine, v in c.items():
            e = engines.setdefault(engine, {"busy_cycles": 0, "instruction_count": 0})
            e["busy_cycles"] += v["busy_cycles"]
            e["instruction_count"] += v["instructions"]
    out["engines"] = {k: {"active_time_percent": 100 * v["busy_cycles"] / (cycles * max(1, len(busy_cores)))
                          if cycles else 0.0, "instruction_count": v["instruction_count"]} for k, v in engines.items()}
    # Source ops: per engine kind, the time covered by the op's instruction
    # slices (their union: slices of one engine overlap, issue to completion),
    # and by waits before them. The op's time is its busiest kind's; it is
    # bound by that kind, or by waiting when its waits cover more.
    per_op = {}
    for e in slices:
        engine = names.get((e["pid"], e["tid"]), "?")
        kind = "waiting" if e["cat"] == "wait" else ("DMA/DRAM" if engine.startswith("dma") else engine)
        per_op.setdefault(e["args"].get("source_op", "?"), {}).setdefault(kind, []).append((e["ts"], e["ts"] + e["dur"]))
    top = []
    for op, kinds in per_op.items():
        covered = {k: _union(v) for k, v in kinds.items()}
        work = {k: v for k, v in covered.items() if k != "waiting"}
        busiest = max(work, key=work.get) if work else "waiting"
        bound = "waiting" if covered.get("waiting", 0.0) > work.get(busiest, 0.0) else busiest
        top.append({"source_op": op, "time_us": work.get(busiest, 0.0), "bound": bound,
                    "covered_us": {k: round(v, 3) for k, v in sorted(covered.items())}})
    out["top_ops"] = sorted(top, key=lambda r: -r["time_us"])[:10]
    return out


def _union(spans):
    """Length of the union of [start, end) spans."""
    total, end = 0.0, float("-inf")
    for s, t in sorted(spans):
        if t > end:
            total += t - max(s, end)
            end = t
    return total


def print_summary(s):
    print(f"total_time {s['total_time'] * 1e6:.3f} us ({s['total_cycles']} cycles), "
          f"mfu_estimated_percent {s['mfu_estimated_percent']:.2f}, dma_active_time_percent "
          f"{s['dma_active_time_percent']:.1f}, dram_read_bytes {s['dram_read_bytes']}, "
          f"dram_write_bytes {s['dram_write_bytes']}")
    for engine, v in sorted(s["engines"].items()):
        print(f"  {engine:7} active_time_percent {v['active_time_percent']:6.2f}  instruction_count "
              f"{v['instruction_count']}")
    print("top source ops by time:")
    for r in s["top_ops"]:
        print(f"  {r['time_us']:10.3f} us  bound: {r['bound']:9}  {r['source_op']}")
