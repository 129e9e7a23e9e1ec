"""Plots (matplotlib, PNG) and the self-contained HTML report of bench rows,
and the per-engine utilisation plot of a profile. Every figure is simulated
time; `wall_s` never appears on a plot.

  bench_plots(rows, DIR)   throughput.png, latency.png (p50 solid, p99 dashed),
                           cost.png (cost per 1M inferences per configuration);
                           x: batch size, one line per (n_models, workers, pipeline
                           size); with a single batch size, x: n_models instead
  bench_html(rows, PATH)   one page: the table and those plots, inlined (base64)
  utilisation_plot(trace, PATH, bins)  per core and engine, the share of each time
                           bin its instruction slices cover
"""
import base64
import html
import io
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # files only: no display
import matplotlib.pyplot as plt  # noqa: E402

TABLE = ["n_models", "workers_per_model", "pipeline_size", "batch_size", "throughput_avg", "latency_ms_p50",
         "latency_ms_p99", "total_infs", "cost_per_1m_inf", "wall_s"]


def _series(rows):
    """(x key, {line label: [(x, row)]}): batch size on x when it varies, else n_models."""
    x = "batch_size" if len({r["batch_size"] for r in rows}) > 1 else "n_models"
    lines = defaultdict(list)
    for r in rows:
        keys = [k for k in ("n_models", "workers_per_model", "pipeline_size", "batch_size") if k != x]
        label = ", ".join(f"{k.split('_')[0]}={r[k]}" for k in keys)
        lines[label].append((r[x], r))
    for v in lines.values():
        v.sort(key=lambda p: p[0])
    return x, lines


def _figures(rows, title):
    """{file name: figure} for bench rows."""
    x, lines = _series(rows)
    figs = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, pts in lines.items():
        ax.plot([p for p, _ in pts], [r["throughput_avg"] for _, r in pts], marker="o", label=label)
    ax.set(xlabel=x, ylabel="inferences per simulated second", title=f"{title}: throughput")
    figs["throughput.png"] = fig
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (label, pts) in enumerate(lines.items()):
        color = f"C{i % 10}"
        ax.plot([p for p, _ in pts], [r["latency_ms_p50"] for _, r in pts], marker="o", color=color,
                label=f"{label} p50")
        ax.plot([p for p, _ in pts], [r["latency_ms_p99"] for _, r in pts], marker="x", linestyle="--",
                color=color, label=f"{label} p99")
    ax.set(xlabel=x, ylabel="latency, simulated ms", title=f"{title}: latency p50 and p99")
    figs["latency.png"] = fig
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = [f"n={r['n_models']} w={r['workers_per_model']} p={r['pipeline_size']} b={r['batch_size']}" for r in rows]
    ax.bar(range(len(rows)), [r["cost_per_1m_inf"] for r in rows])
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="USD per 1M inferences", title=f"{title}: cost per 1M inferences")
    figs["cost.png"] = fig
    for name, f in figs.items():
        if name != "cost.png":
            f.axes[0].grid(alpha=0.3)
            f.axes[0].legend(fontsize=7)
        f.tight_layout()
    return figs


def bench_plots(rows, directory, title="bench"):
    """Writes the PNGs into directory; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, fig in _figures(rows, title).items():
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def bench_html(rows, path, title="bench"):
    """One self-contained page: the rows as a table, the plots inlined."""
    imgs = []
    for name, fig in _figures(rows, title).items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        imgs.append((name, base64.b64encode(buf.getvalue()).decode()))
    cells = lambda r: "".join(f"<td>{html.escape(_fmt(r.get(k)))}</td>" for k in TABLE)  # noqa: E731
    page = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #999;padding:3px 8px;text-align:right}img{display:block;margin:1em 0}</style>",
            "</head><body>", f"<h1>{html.escape(title)}</h1>",
            "<p>Simulated time throughout; wall_s is the simulator's own time.</p>",
            "<table><tr>" + "".join(f"<th>{k}</th>" for k in TABLE) + "</tr>",
            *[f"<tr>{cells(r)}</tr>" for r in rows], "</table>",
            *[f"<img alt='{n}' src='data:image/png;base64,{b}'>" for n, b in imgs], "</body></html>"]
    with open(path, "w") as f:
        f.write("\n".join(page))
    return path


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def utilisation_plot(trace, path, bins=200):
    """Per core and engine with instructions: busy share of each time bin."""
    slices = defaultdict(list)
    names = {}
    for e in trace["traceEvents"]:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            names[e["pid"]] = e["args"]["name"]
        elif e.get("ph") == "X" and e.get("cat") == "instruction":
            slices[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"]
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    if not slices:
        raise ValueError("the trace has no instruction slices to plot")
    t0 = min(s for v in slices.values() for s, _ in v)
    t1 = max(e for v in slices.values() for _, e in v)
    width = (t1 - t0) / bins or 1.0
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for key in sorted(slices):
        busy = [0.0] * bins
        for s, e in slices[key]:
            b = int((s - t0) / width)
            while s < e and b < bins:
                end = min(e, t0 + (b + 1) * width)
                busy[b] += end - s
                s, b = end, b + 1
        xs = [(t0 + (i + 0.5) * width) for i in range(bins)]
        ax.plot(xs, [min(100.0, 100 * v / width) for v in busy], linewidth=1,  # (pipelined slices overlap)
                label=f"{names.get(key[0], key[0])}.{threads.get(key, key[1])}")
    ax.set(xlabel="simulated time, us", ylabel="busy, % of each bin", ylim=(0, 105),
           title="per-engine utilisation over time")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
