import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "models"))
sys.path.append(ROOT)  # the `models` package: import models.resnet50

BIN = os.path.join(ROOT, "bin", "infsim")


def cli(*args, check=True):
    """Runs `bin/infsim ARGS` in a separate process."""
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"infsim {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


@pytest.fixture
def run_cli():
    return cli
