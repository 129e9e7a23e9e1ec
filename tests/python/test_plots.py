"""bench --plot / --html and profile --plot: the PNGs (matplotlib), and the
self-contained report rendered by headless Chromium."""
import json
import shutil
import subprocess

import numpy as np
import pytest

import mlp
from helpers import export

PNG = b"\x89PNG\r\n\x1a\n"


def test_bench_writes_plots_and_a_self_contained_report(run_cli, tmp_path):
    out = run_cli("bench", "mlp", "--n-models", "1,4", "--batch-sizes", "1,8", "--requests", "40", "--timing-only",
                  "--plot", tmp_path / "plots", "--html", tmp_path / "r.html", "--json", tmp_path / "r.json").stdout
    for name in ("throughput.png", "latency.png", "cost.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10000, name
        assert f"plot -> {tmp_path / 'plots' / name}" in out
    page = (tmp_path / "r.html").read_text()
    rows = json.loads((tmp_path / "r.json").read_text())
    assert page.count("data:image/png;base64,") == 3 and page.count("<tr>") == 1 + len(rows) == 5
    assert "src='http" not in page and "<script" not in page  # nothing fetched: one file
    for r in rows:
        assert f"{r['throughput_avg']:.4g}" in page
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (setup.sh installs it)")
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'chrome'}"]
    dom = subprocess.run(base + ["--dump-dom", f"file://{tmp_path / 'r.html'}"], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count("<img") == 3 and dom.count("<tr>") == 5, dom[:500]
    shot = tmp_path / "shot.png"
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1200,1600", f"file://{tmp_path / 'r.html'}"],
                   capture_output=True, timeout=120)
    import matplotlib.image
    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and float(np.std(pixels)) > 0.05  # the plots drew something


def test_profile_plot_shows_each_busy_engine(run_cli, tmp_path):
    """profile --plot: per-engine utilisation over time, from the same trace."""
    x = mlp.example_input(2, 30)
    run_cli("compile", export(mlp.build((30, 20, 4)), x, tmp_path / "m.onnx"), "-o", tmp_path / "m.infx")
    np.savez(tmp_path / "in.npz", x=x.numpy())
    run_cli("profile", tmp_path / "m.infx", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "t.json",
            "--plot", tmp_path / "u.png")
    assert (tmp_path / "u.png").read_bytes().startswith(PNG)
    trace = json.loads((tmp_path / "t.json").read_text())
    from infsim.tools import plots
    with pytest.raises(ValueError, match="no instruction slices"):
        plots.utilisation_plot({"traceEvents": [e for e in trace["traceEvents"] if e.get("cat") != "instruction"]},
                               str(tmp_path / "none.png"))
