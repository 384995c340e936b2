#!/usr/bin/env bash
# Proof, without a GPU, that requirements-gpu.txt gives mxnet-cu112 every shared library it links
# except the NVIDIA driver's libcuda.so.1, and that `import recognizer` makes `import mxnet` find them.
# NOT part of CI: it downloads about 2.5 GB of wheels into a fresh virtualenv.
#
# Usage (from anywhere):  bash scripts/verify_gpu_wheels.sh
#   WORK_DIR=/tmp/verify_gpu_wheels  where the virtualenv and pip cache go (re-runs reuse them)
#   PYTHON=python3                   interpreter for the virtualenv (3.8-3.11)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK_DIR:-/tmp/verify_gpu_wheels}
PY=${PYTHON:-python3}
VENV=$WORK/venv
WHEELS=$WORK/wheels
mkdir -p "$WORK"

step() { printf '\n=== %s\n' "$*"; }

step "disk before install"
df -h "$WORK"

step "install requirements-gpu.txt into $VENV"
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# Download first, then install from that folder: its size is the download size.
"$VENV/bin/python" -m pip download --quiet --progress-bar off -d "$WHEELS" -r "$ROOT/requirements-gpu.txt"
echo "download took $(( $(date +%s) - start )) s; wheels: $(du -sh "$WHEELS" | cut -f1)"
"$VENV/bin/python" -m pip install --quiet --no-index --find-links "$WHEELS" -r "$ROOT/requirements-gpu.txt"
echo "download + install took $(( $(date +%s) - start )) s; virtualenv: $(du -sh "$VENV" | cut -f1)"
ls -S "$WHEELS" | head -n 5 | while read -r f; do du -h "$WHEELS/$f"; done
"$VENV/bin/python" -m pip list 2>/dev/null | grep -Ei '^(mxnet|nvidia|numpy|gluoncv|decord|opencv)'

cd "$ROOT"
step "environment doctor (expected: only libcuda.so.1 missing, no GPU, exit 1)"
"$VENV/bin/python" scripts/check_env.py --model vgg16_ucf101 --num-gpus 1 --no-pretrained-base \
    --data-dir "$WORK" --save-dir "$WORK" && rc=0 || rc=$?
echo "doctor exit status: $rc"

step "assert: every library libmxnet.so needs resolves, except libcuda.so.1"
"$VENV/bin/python" - <<'PY'
import sys
sys.path.insert(0, 'scripts')
import check_env
report = check_env.library_report(check_env.cuda_libs.find_libmxnet())
missing = sorted(set(report['missing']))
print('resolved: %d libraries; missing: %s' % (len(report['resolved']), missing))
sys.exit(0 if missing == ['libcuda.so.1'] else 1)
PY

step "import mxnet WITHOUT the preload (expected: fails on a CUDA 11 library)"
RECOGNIZER_NO_CUDA_PRELOAD=1 "$VENV/bin/python" -c 'import recognizer, mxnet' 2>&1 | tail -n 1 || true

step "import mxnet WITH the preload (expected: gets as far as the driver's libcuda.so.1)"
out=$("$VENV/bin/python" -c 'import recognizer, mxnet' 2>&1 || true)
echo "$out" | tail -n 1
echo "$out" | grep -q 'libcuda.so.1' || { echo "FAIL: expected the libcuda.so.1 error"; exit 1; }

step "import mxnet with the preload and a stub libcuda.so.1 (its driver functions all fail)"
# The stub defines every cu* driver symbol libmxnet.so imports, each returning CUDA_ERROR_NO_DEVICE,
# so the loader is satisfied and `import mxnet` runs to the end: proof that nothing else is missing.
STUB=$WORK/stub
mkdir -p "$STUB"
LIBMXNET=$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, "scripts"); import check_env; print(check_env.cuda_libs.find_libmxnet())')
# (plus the few the doctor calls itself)
{ nm -D --undefined-only "$LIBMXNET" | awk '{print $2}' | sed 's/@.*//' | grep -E '^cu[A-Z]'
  printf '%s\n' cuInit cuDriverGetVersion cuDeviceGetCount cuDeviceGet cuDeviceGetName cuDeviceGetAttribute; } \
    | sort -u \
    | awk '{print "int " $1 "(void) { return 100; }"}' > "$STUB/libcuda_stub.c"
echo "stub defines $(wc -l < "$STUB/libcuda_stub.c") driver functions"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUB/libcuda.so.1" "$STUB/libcuda_stub.c"
LD_LIBRARY_PATH=$STUB "$VENV/bin/python" - <<'PY'
import recognizer  # noqa: F401  (preloads the pip CUDA libraries)
import mxnet as mx
feats = mx.runtime.Features()
print('import mxnet OK:', mx.__version__, {f: feats.is_enabled(f) for f in ('CUDA', 'CUDNN', 'NCCL', 'MKLDNN')})
try:
    print('num_gpus:', mx.context.num_gpus())
except mx.base.MXNetError as err:
    print('num_gpus raised (expected with a stub driver):', str(err).strip().splitlines()[0][:200])
PY

step "environment doctor with the stub libcuda.so.1 (mxnet imports; the stub's cuInit fails)"
LD_LIBRARY_PATH=$STUB "$VENV/bin/python" scripts/check_env.py --model vgg16_ucf101 --num-gpus 0 \
    --no-pretrained-base --data-dir "$WORK" --save-dir "$WORK" && rc=0 || rc=$?
echo "doctor exit status: $rc"

step "done"
echo "total $(( $(date +%s) - start )) s"
