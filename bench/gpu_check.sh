#!/usr/bin/env bash
# The checks only a CUDA machine can make, as one command (about 5-8 minutes on an H100/H200):
#   1. the `gpu`-marked tests (CUDA equals CPU; bf16/fp16 autocast; linear weights cast once
#      give autocast's bits for every family);
#   2. bench/model_forward.py: the bare bf16 forward (tokens/s, MFU) and its aten operations;
#   3. bench/gpu_scan.py: a scan and a variant scoring run end to end (busy fraction, MFU,
#      hours per 3.1 Gbp, variants per hour).
# Figures go to $OUT (the device tool's folder that comes back) or ./gpu_check_out.
# With the workplace's device tool: first `bash bench/gpu_wheels.sh` here, then
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=600)
# GPU_CHECK_DRY=1 runs the same steps on a CPU at tiny sizes (the script's own test).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_check_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
py=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/genaannot-site .whl/*.whl \
        || { echo "gpu_check: installing .whl/ failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/genaannot-site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
status=0
step() {  # name, seconds, command...: run one step, keep its output, go on if it fails
    local name=$1 limit=$2; shift 2
    echo "== $name ($(date -u +%H:%M:%S))"
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    tail -n 40 "$out/$name.txt"
    echo "== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$py" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
    step pytest_gpu 300 "$py" -m pytest -q -p no:cacheprovider -n 0 -m gpu tests/test_predict.py tests/test_precision.py
    step model_forward 120 "$py" bench/model_forward.py --device cpu --precision bf16 --hidden 32 --layers 2 --heads 2 \
        --intermediate 64 --positions 66 --batch-size 2 --iters 2 --warmup 1 --count-ops
    step gpu_scan 300 "$py" bench/gpu_scan.py --device cpu --hidden 64 --layers 2 --heads 2 --intermediate 256 \
        --max-bp 60000 --repeat 1 --variants 20 --batch-size 8 --workers 0
else
    step pytest_gpu 300 "$py" -m pytest -q -p no:cacheprovider -n 0 -m gpu tests/test_predict.py tests/test_precision.py
    step model_forward 120 "$py" bench/model_forward.py --device cuda --precision bf16 --batch-size 64 --count-ops
    step gpu_scan 360 "$py" bench/gpu_scan.py --device cuda --precision bf16 --batch-size 64 --workers 8 --repeat 8 \
        --variants 5000
fi
echo "gpu_check: $([ $status -eq 0 ] && echo all steps passed || echo a step failed), figures in $out"
exit $status
