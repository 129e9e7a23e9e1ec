"""Profile timelines: the events the simulator recorded (traces/recorder.h)
written as Chrome trace-event JSON ({"traceEvents": [...]}), which the
Perfetto UI and chrome://tracing open.

Processes are cores ("chip0.core0", pid = global core number), threads are
engines ("tensor", "vector", "scalar", "dma0", ...). Every instruction is an
"X" slice named by its opcode, with args: instruction index, source ONNX
node, and its start and end in core clock cycles (the core's reference
clock, counted from the start of the simulation). Semaphore waits are
slices of their own ("semaphore wait", category "wait"). Each request is an
async span from arrival to end on the "host" process. Times are in
microseconds of simulated time.
"""
import json

def engine_tid(name):
    order = ["tensor", "vector", "scalar"]
    return order.index(name) if name in order else 3 + int(name[3:])


def chrome_trace(events, dropped, placements, period_fs, cores_per_chip, records=()):
    """events: stop_trace()'s tuples; placements: {(chip, core): (executable,
    image core)} for naming instructions; period_fs: the core clock period."""
    code = {}  # (chip, core, engine) -> (opcode per pc, source op per pc)
    for (chip, core), (exe, image_core) in placements.items():
        for c, engine, lines, ops in exe.streams:
            if c == image_core:
                code[(chip, core, engine)] = ([ln.split()[0] for ln in lines], [exe.source_ops[o] for o in ops])
    out, seen = [], set()
    for start, end, chip, core, engine, pc, kind in events:
        pid = chip * cores_per_chip + core
        tid = engine_tid(engine)
        if pid not in seen:
            seen.add(pid)
            out.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": f"chip{chip}.core{core}"}})
            out.append({"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}})
        if (pid, tid) not in seen:
            seen.add((pid, tid))
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": engine}})
        ops, srcs = code.get((chip, core, engine), ([], []))
        ev = {"ph": "X", "pid": pid, "tid": tid, "ts": start / 1e9, "dur": (end - start) / 1e9,
              "args": {"pc": pc, "start_cycle": round(start / period_fs), "end_cycle": round(end / period_fs)}}
        if pc < len(srcs):
            ev["args"]["source_op"] = srcs[pc]
        if kind == "instruction":
            ev.update(name=ops[pc] if pc < len(ops) else "instruction", cat="instruction")
        else:
            ev.update(name="semaphore wait", cat="wait")
        out.append(ev)
    host = -1
    if records:
        out.append({"ph": "M", "name": "process_name", "pid": host, "args": {"name": "host"}})
    for r in records:
        span = {"cat": "request", "name": f"request {r['id']}", "id": r["id"], "pid": host, "tid": 0}
        out.append(dict(span, ph="b", ts=r["arrival_s"] * 1e6, args={"status": r["status"], "replica": r["replica"]}))
        out.append(dict(span, ph="e", ts=r["end_s"] * 1e6))
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"events_dropped": dropped, "source": "infsim (simulated time)"}}


def write(path, trace):
    with open(path, "w") as f:
        json.dump(trace, f)
