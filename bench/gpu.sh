#!/bin/bash
# The CUDA path on a GPU machine: the CUDA tests, then the recipes trained there.
#
#   bench/gpu.sh DATA_DIR OUT_DIR [SECONDS]
#
# DATA_DIR holds fashion-mnist/*.gz (Debian's dataset-fashion-mnist, copied); OUT_DIR gets one
# log per command, each ending with the command's wall time. SECONDS (default 520) bounds the
# whole script: a phase starts only where the time left is enough for it, and whatever still runs
# at the end is stopped, so the logs come back from a machine lent for a fixed time.
#
# 1. tests/test_cuda.py (the GPU's numbers against the CPU's); nothing else runs if it fails.
# 2. fast91, fast93 and fast94 alone on the GPU, one after another: the whole command.
# 3. side by side: `best` for seeds 0, 1, 2 and the ensemble recipe for seed 0 (its members at
#    once, as on every machine with the cores for them: these networks are far too small to fill
#    a GPU alone).
# 4. where the time left is enough, the ensemble recipe for seeds 1 and 2, side by side.
set -u
data=${1:?DATA_DIR}; out=${2:?OUT_DIR}; budget=${3:-520}
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
start=$SECONDS
left() { echo $((budget - (SECONDS - start))); }
# summary NAME...: each log's test accuracies, its errors and its wall time
summary() {
    for name in "$@"; do
        echo "$name:"; grep -E "test accuracy|img/s, |rror|wall seconds" "$out/$name.log" | tail -4
    done
}

# run NAME ARGS...: `convnet train ARGS` into OUT_DIR/NAME.log, stopped when the time is up
run() {
    local name=$1; shift
    local t0=$SECONDS
    timeout "$(left)" "$python" -m convnet train --device cuda --data-dir "$data" \
        --out "/tmp/gpu-runs/$name" --force "$@" > "$out/$name.log" 2>&1
    echo "exit $? · wall seconds: $((SECONDS - t0))" >> "$out/$name.log"
}

{
    nvidia-smi -L
    "$python" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
    nproc
    timeout "$(left)" "$python" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1
} > "$out/cuda-tests.log" 2>&1
summary=$(tail -1 "$out/cuda-tests.log")
if [[ $summary != *passed* || $summary == *failed* || $summary == *error* ]]; then
    echo "the CUDA tests did not pass:"; tail -40 "$out/cuda-tests.log"; exit 1
fi
tail -1 "$out/cuda-tests.log"

for recipe in fast91 fast93 fast94; do
    run "$recipe-0" --recipe "$recipe" --seed 0
    summary "$recipe-0"
done

for seed in 0 1 2; do OMP_NUM_THREADS=2 run "best-$seed" --recipe best --seed "$seed" & done
run ensemble-0 --recipe ensemble --seed 0 &
wait
summary best-0 best-1 best-2 ensemble-0

took=$(grep -o "wall seconds: [0-9]*" "$out/ensemble-0.log" | grep -o "[0-9]*$")
if [ "$(left)" -gt $((${took:-9999} + 30)) ]; then  # as long again as the first, and a margin
    for seed in 1 2; do run "ensemble-$seed" --recipe ensemble --seed "$seed" & done
    wait
    summary ensemble-1 ensemble-2
fi
echo "script seconds: $((SECONDS - start))"
