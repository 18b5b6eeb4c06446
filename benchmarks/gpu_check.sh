#!/usr/bin/env bash
# The GPU half of the project in one run: at most ~8 minutes on a fresh GPU machine (an H200 with
# python3.12, cupy-cuda13x, numba-cuda, torch, pytest; no package registry).
#
#   bash benchmarks/gpu_check.sh             on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --dry-run   here, without a GPU: the CPU half, GPU commands stubbed
#   bash benchmarks/gpu_check.sh --prepare   here, before: download the wheels to carry into .whl/
#
# Steps, most important first, each under its own time limit and all under one budget
# (GPU_CHECK_BUDGET_S, default 470 s), so a slow step cannot starve the report:
#   0. wheels carried in .whl/ (NumPy 2.4 for numba-cuda, which fails to import on NumPy 2.5)
#      installed to /tmp/site, first on PYTHONPATH; then `pip install --no-deps -e .`
#   1. benchmarks/gpu_kernels_check.py: the CUDA C kernels and the Numba-CUDA ones of the same
#      five families against the float64 reference, the CUDA C kernels timed against the CuPy
#      reference and the copy bandwidth at 8192 x 4096 -> cuda_kernels.md
#   2. the gpu-marked tests (tests/test_gpu.py, cpu against cuda) -> gpu_tests.txt
#   3. tinygrad-pt bench all --device cuda --compare torch --repeat 5 -> bench_cuda.md (+ .csv);
#      then the Numba-CUDA attention, matmul and NT-Xent kernel tests on the GPU -> gpu_tests.txt
#   4. 20 steps of every model family with --device cuda, GPT also with the CUDA C kernels by
#      name -> a table appended to bench_cuda.md
# Everything goes to $OUT (the device tool's folder that comes back), else benchmarks/results/.
# The exit status is that of the first failed step (0 when all passed); every step runs anyway.
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=run
case "${1:-}" in
    --dry-run) MODE=dry ;;
    --prepare) MODE=prepare ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--dry-run | --prepare]" >&2; exit 2 ;;
esac

if [ "$MODE" = prepare ]; then
    # The GPU machine reaches no registry: its Python is 3.12 on x86-64 Linux, so fetch for that.
    # NumPy 2.4: numba-cuda registers np.row_stack, which NumPy 2.5 removed (pyproject.toml).
    mkdir -p .whl
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "numpy>=2.4,<2.5"
    ls -la .whl
    echo "carry .whl in the device run (see the README's GPU section)"
    exit 0
fi

# A dry run leaves nothing in the repository unless OUT says where: its reports are not results.
if [ "$MODE" = dry ]; then OUT_DIR="${OUT:-$(mktemp -d)}"; else OUT_DIR="${OUT:-benchmarks/results}"; fi
mkdir -p "$OUT_DIR"
BUDGET="${GPU_CHECK_BUDGET_S:-470}"
LOG="$OUT_DIR/gpu_check.log"
: > "$LOG"
STATUS=0
export PYTHONUNBUFFERED=1

say() { echo "[gpu_check +${SECONDS}s] $*" | tee -a "$LOG"; }

# step NAME LIMIT_S COMMAND...: run COMMAND under min(LIMIT_S, what the budget has left), its
# output appended to the log; a failure or time-out is recorded, and the next step runs anyway.
step() {
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET - SECONDS - 5))
    [ "$left" -lt "$limit" ] && limit="$left"
    if [ "$limit" -lt 5 ]; then
        say "SKIPPED $name: the budget of ${BUDGET}s is spent"
        [ "$STATUS" -eq 0 ] && STATUS=124
        return 124
    fi
    say "START $name (limit ${limit}s): $*"
    timeout --kill-after=5 "$limit" "$@" >> "$LOG" 2>&1
    local rc=$?
    say "END $name: exit $rc$([ $rc -eq 124 ] && echo ' (timed out)')"
    [ "$rc" -ne 0 ] && [ "$STATUS" -eq 0 ] && STATUS=$rc
    return $rc
}

if [ "$MODE" = dry ]; then
    say "DRY RUN on $(uname -m) without a GPU: GPU commands are stubbed, nothing measures a GPU"
    DEVICE="none (dry run)"
else
    if ls .whl/*.whl > /dev/null 2>&1; then
        step "carried wheels" 60 python3 -m pip install -q --no-index --no-deps --no-compile \
            --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        BEFORE_PYTHONPATH="${PYTHONPATH:-}"
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
        # The image's compiled packages must still import over the carried NumPy; if one does not,
        # the carried wheels go (numba-cuda may then fail to import: step 1 says so, the rest runs)
        if ! step "image packages over the carried wheels" 60 python3 -c \
                "import numpy, cupy, scipy.special, sklearn, torch; cupy.zeros(1).sum().get()"; then
            say "dropping /tmp/site from PYTHONPATH: the image's packages fail over it"
            export PYTHONPATH="$BEFORE_PYTHONPATH"
        fi
    fi
    # --no-build-isolation: no registry to fetch setuptools from; the image has it. Should the
    # editable install fail (an old setuptools), the plain one installs the same package.
    before=$STATUS
    if ! step "install" 90 python3 -m pip install -q --no-deps --no-build-isolation -e .; then
        step "install (not editable)" 90 python3 -m pip install -q --no-deps \
            --no-build-isolation . && STATUS=$before
    fi
    DEVICE="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
    say "device: $DEVICE"
    python3 -c "import numpy, cupy; print('numpy', numpy.__version__, 'cupy', cupy.__version__)" \
        2>&1 | tee -a "$LOG"
fi

# 1. kernels against the reference, and timed
if [ "$MODE" = dry ]; then
    step "kernel check (dry run)" 120 python3 benchmarks/gpu_kernels_check.py --dry-run \
        --out "$OUT_DIR" --quick
else
    step "kernel check" 150 python3 benchmarks/gpu_kernels_check.py --out "$OUT_DIR"
fi

# 2. the gpu-marked tests; under the dry run, only collected (they need a GPU to run)
{
    echo "# GPU tests: tests/test_gpu.py (cpu vs cuda) and the Numba-CUDA kernel tests on the GPU"
    echo "device: $DEVICE"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
} > "$OUT_DIR/gpu_tests.txt"
TESTS=(tests/test_gpu.py)
TMP_LOG="$(mktemp)"
if [ "$MODE" = dry ]; then
    step "gpu tests (collected only)" 60 bash -c \
        "python3 -m pytest -q -p no:cacheprovider --collect-only ${TESTS[*]} 2>&1 | tail -3 >> '$OUT_DIR/gpu_tests.txt'"
else
    # pytest writes to a file of its own and the tail is copied after the step: a run stopped by
    # its limit still shows how far it got
    step "gpu tests" 150 bash -c \
        "python3 -m pytest -q -p no:cacheprovider -rs --durations=5 ${TESTS[*]} > '$TMP_LOG' 2>&1"
    tail -60 "$TMP_LOG" >> "$OUT_DIR/gpu_tests.txt"
fi

# 3. the bench, against torch. `python3 -m tinygrad_pt.cli` is the tinygrad-pt command, whether
# or not pip put the script on PATH.
TG=(python3 -m tinygrad_pt.cli)
BENCH_TMP="$(mktemp -d)"
if [ "$MODE" = dry ]; then
    step "bench (stub: its CLI parses)" 30 "${TG[@]}" bench --help
    echo "# bench_cuda (dry run: the bench was not run; no GPU)" > "$OUT_DIR/bench_cuda.md"
else
    step "bench" 100 "${TG[@]}" bench all --device cuda --compare torch --repeat 5 \
        --out "$BENCH_TMP"
    if [ -f "$BENCH_TMP/bench_cuda.md" ]; then
        cp "$BENCH_TMP/bench_cuda.md" "$OUT_DIR/bench_cuda.md"
        [ -f "$BENCH_TMP/bench_cuda.csv" ] && cp "$BENCH_TMP/bench_cuda.csv" "$OUT_DIR/"
    else
        echo "# bench_cuda: the bench wrote no report (see gpu_check.log)" > "$OUT_DIR/bench_cuda.md"
    fi
fi

# 3b. the Numba-CUDA families that step 1 does not cover (attention, matmul, NT-Xent): their
# kernel tests, which run on the GPU when the simulator is off; last but training, as their JIT
# compiles are slow
# (GELU and AdamW, step 1 checked; the -k below leaves their tests in _more out)
SIM_TESTS=(tests/test_kernels_cuda_sim_attention.py tests/test_kernels_cuda_sim_matmul.py
           tests/test_kernels_cuda_sim_more.py -k "'not gelu and not adamw'")
if [ "$MODE" = dry ]; then
    step "numba-cuda kernel tests (collected only)" 60 bash -c \
        "python3 -m pytest -q -p no:cacheprovider --collect-only ${SIM_TESTS[*]} 2>&1 | tail -1 >> '$OUT_DIR/gpu_tests.txt'"
else
    echo "## Numba-CUDA kernel tests on the GPU: ${SIM_TESTS[*]}" >> "$OUT_DIR/gpu_tests.txt"
    step "numba-cuda kernel tests" 60 bash -c \
        "unset NUMBA_ENABLE_CUDASIM; python3 -m pytest -q -p no:cacheprovider -rs ${SIM_TESTS[*]} > '$TMP_LOG' 2>&1"
    tail -30 "$TMP_LOG" >> "$OUT_DIR/gpu_tests.txt"
fi

# 4. every model family, a few steps on the device
TRAIN_DEVICE=cuda
[ "$MODE" = dry ] && TRAIN_DEVICE=cpu
FAMILIES=(gpt ae dae vae gan simclr moco)  # gpt first: its step is the one the kernels serve
[ "$MODE" = dry ] && FAMILIES=(ae)  # on the CPU: the loop and the summary are what is tried
{
    echo
    echo "## Training, briefly, with --device $TRAIN_DEVICE"
    echo
    echo "device: $DEVICE. 20 steps each (a smoke test of every family on the device, not a"
    echo "quality run); the time includes start-up and the first calls' compilation."
    echo
    echo "| family | exit | wall s | last train loss |"
    echo "|---|---:|---:|---:|"
} >> "$OUT_DIR/bench_cuda.md"
RUNS="$(mktemp -d)"
# train LABEL FAMILY: 20 steps of FAMILY, one row of the table (the environment passes through)
train() {
    local label="$1" family="$2" t0=$SECONDS
    step "train $label" 40 "${TG[@]}" train "$family" --device "$TRAIN_DEVICE" --steps 20 \
        --out "$RUNS/$label" --quiet --eval-every 20
    local rc=$? loss
    loss="$(python3 -c "
import json
rows = [json.loads(l) for l in open('$RUNS/$label/metrics.jsonl')]
print(next(r['loss'] for r in reversed(rows) if r.get('split') == 'train'))" 2>/dev/null || echo -)"
    echo "| $label | $rc | $((SECONDS - t0)) | $loss |" >> "$OUT_DIR/bench_cuda.md"
}
CUDA_C="fast,softmax=cuda_c,cross_entropy=cuda_c,layer_norm=cuda_c,gelu=cuda_c,adamw=cuda_c"
for family in "${FAMILIES[@]}"; do
    train "$family" "$family"
    # the first family once more with every CUDA C kernel asked for by name: the kernels inside
    # a real training step, its loss beside the default run's (same seed). In the dry run (ae on
    # the CPU) the names change nothing, but the setting must still parse.
    if [ "$family" = "${FAMILIES[0]}" ]; then
        TINYGRAD_PT_KERNELS="$CUDA_C" train "$family (cuda_c kernels)" "$family"
    fi
done
rm -rf "$RUNS" "$BENCH_TMP" "$TMP_LOG"

say "done in ${SECONDS}s, status $STATUS; reports in $OUT_DIR: $(cd "$OUT_DIR" && ls | tr '\n' ' ')"
exit "$STATUS"
