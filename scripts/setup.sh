#!/usr/bin/env bash
# One idempotent setup for developers, CI and users: system packages, a virtual environment,
# the Python dependencies, Horovod 0.28.1 built against the installed TensorFlow with MPI,
# and the suite itself (editable). A second call only checks and reuses what is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
HOROVOD_VERSION="0.28.1"
DEB_PACKAGES=(openmpi-bin libopenmpi-dev libhighwayhash-dev libfarmhash-dev cmake g++)

log() { printf '[setup] %s\n' "$*"; }

# 1. System packages: install what is missing and only that.
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[setup] error: missing system packages; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# 2. Virtual environment and Python packages (re-installed only when requirements.txt changes).
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing Python packages from requirements.txt"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r "$ROOT/requirements.txt"
  echo "$want" > "$stamp"
fi

# 3. Horovod from source against this TensorFlow, with MPI. TensorFlow moved xla_builder.h;
#    a forwarding header makes Horovod's (CPU-irrelevant) include resolve without patching it.
#    No Gloo: the suite launches through MPI only (mpirun, srun), and the build took 302 s with
#    Gloo, 199 s without (`pip wheel` both ways at nice 19 beside a campaign, Zen 4, 2026-12-06).
if ! "$PY" -c "import horovod.tensorflow" 2>/dev/null; then
  compat="$VENV/horovod-compat"
  mkdir -p "$compat/tensorflow/compiler/xla/client"
  echo '#include "xla/hlo/builder/xla_builder.h"' > "$compat/tensorflow/compiler/xla/client/xla_builder.h"
  log "building Horovod $HOROVOD_VERSION against TensorFlow with MPI (about 3-4 minutes on 2 cores)"
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
    HOROVOD_WITHOUT_GLOO=1 MAKEFLAGS="-j$(nproc)" CPLUS_INCLUDE_PATH="$compat" \
    "$PY" -m pip install -q --no-build-isolation --no-cache-dir "horovod==$HOROVOD_VERSION"
fi

# 4. The suite itself.
if [ ! -x "$VENV/bin/harness" ]; then
  log "installing the suite (editable)"
  "$PY" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
fi
log "ready: $VENV ($("$PY" -c 'import tensorflow as tf, horovod; print("TensorFlow", tf.__version__, "/ Horovod", horovod.__version__)' 2>/dev/null))"
