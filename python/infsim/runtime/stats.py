"""STATS.json: totals, and every counter nested by its path (docs/runtime.md,
"Counter names"): chip0.core0.tensor.busy_cycles is
counters["chip0"]["core0"]["tensor"]["busy_cycles"], link.chip0-chip1.bytes
is counters["link"]["chip0-chip1"]["bytes"]."""
from .. import _infsim


def nest(counter_list) -> dict:
    counters = {}
    for path, name, unit, desc, value in counter_list:
        node = counters
        for part in path.split("."):
            node = node.setdefault(part, {})
        node[name] = value
    return counters


def make_stats(r, instance, config) -> dict:
    """STATS.json content of one solo run."""
    counters = nest(r["counters"])
    return {"total_cycles": r["total_cycles"], "simulated_seconds": r["simulated_seconds"], "runs": 1,
            "latency_s": r.get("latency_s", r["simulated_seconds"]), "status": r.get("status", "NRT_SUCCESS"),
            "instance": instance, "config": config, "counters": counters,
            "counter_units": {f"{p}.{n}": {"unit": u, "description": d} for p, n, u, d, _ in r["counters"]},
            "derived": derived_figures(counters, r["simulated_seconds"], config)}


def combine_stats(stats_list, instance) -> dict:
    """One STATS.json for several device runs (a bundle's steps, the pieces
    of a split batch): cycles, time and every counter add up; derived
    figures are recomputed."""
    total = {"total_cycles": 0, "simulated_seconds": 0.0, "latency_s": 0.0, "runs": 0, "instance": instance,
             "config": stats_list[0]["config"], "counters": {}, "counter_units": {}}

    def add(dst, src):
        for k, v in src.items():
            if isinstance(v, dict):
                add(dst.setdefault(k, {}), v)
            else:
                dst[k] = dst.get(k, 0) + v

    for s in stats_list:
        for k in ("total_cycles", "simulated_seconds", "latency_s", "runs"):
            total[k] += s[k]
        add(total["counters"], s["counters"])
        total["counter_units"].update(s["counter_units"])
    total["derived"] = derived_figures(total["counters"], total["simulated_seconds"], total["config"])
    return total


def derived_figures(counters, seconds, config) -> dict:
    """Figures computed from the counters (never counted separately): tensor
    FLOP rate and array utilisation per core, DMA, DRAM and link bandwidths."""
    if seconds <= 0:
        return {}
    c = _infsim.config(config)
    peak_macs = int(c["array_rows"]) * int(c["array_cols"]) * float(c["tensor_clock_mhz"]) * 1e6  # per second
    out = {}
    for chip, parts in counters.items():
        if not chip.startswith("chip"):
            continue
        for core, engines in parts.items():
            if not core.startswith("core"):
                continue
            macs = engines.get("tensor", {}).get("macs", 0)
            out[f"{chip}.{core}.tensor.tflops"] = 2 * macs / seconds / 1e12
            out[f"{chip}.{core}.tensor.utilization"] = macs / (peak_macs * seconds)
            for engine, values in engines.items():
                if "bytes" in values:
                    out[f"{chip}.{core}.{engine}.gb_per_s"] = values["bytes"] / seconds / 1e9
        for channel, values in parts.get("dram", {}).items():
            out[f"{chip}.dram.{channel}.gb_per_s"] = (values["read_bytes"] + values["write_bytes"]) / seconds / 1e9
    for link, values in counters.get("link", {}).items():
        out[f"link.{link}.gb_per_s"] = values["bytes"] / seconds / 1e9
    return out


def dram_bytes(counters) -> int:
    """Read plus write bytes over every chip's DRAM channels."""
    return sum(v["read_bytes"] + v["write_bytes"] for chip, parts in counters.items() if chip.startswith("chip")
               for v in parts.get("dram", {}).values())
