#!/usr/bin/env bash
# Installs what infsim needs from Debian's packages, builds it, and puts
# `infsim` on PATH. Safe to run again: it only installs what is missing and
# rebuilds what changed.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

PACKAGES=(cmake ninja-build g++ pkg-config python3-dev
  libsystemc-dev libboost-dev libfmt-dev libgtest-dev libyaml-cpp-dev nlohmann-json3-dev pybind11-dev
  python3-numpy python3-torch python3-onnx python3-pytest python3-yaml python3-rich python3-tqdm
  python3-prometheus-client python3-matplotlib tmux chromium)
# (prometheus-client: monitor --prometheus; matplotlib: plots; tmux, chromium: the tests of top and of the report)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's numpy/torch/onnx/pybind11 are built for /usr/bin/python3.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build build -j "$(nproc)"

# `infsim` on PATH: a link to the checkout's launcher.
bindir=/usr/local/bin
[ -w "$bindir" ] || bindir="$HOME/.local/bin"
mkdir -p "$bindir"
ln -sf "$PWD/bin/infsim" "$bindir/infsim"
case ":$PATH:" in *":$bindir:"*) ;; *) echo "setup: add $bindir to PATH to use 'infsim' (or run bin/infsim)";; esac
echo "setup: done; try 'infsim demo'"
