#!/bin/bash
# The CUDA path on a GPU machine: the CUDA tests, then the accuracy recipes trained there.
#
#   bench/gpu.sh DATA_DIR OUT_DIR [SEEDS...]
#
# DATA_DIR holds fashion-mnist/*.gz (Debian's dataset-fashion-mnist, copied); OUT_DIR gets one
# log per run. The ensemble recipe runs once per seed (default seeds 0 3 6, so members 0–8), all
# seeds at the same time: these networks are far too small to fill a GPU. Its members are the
# `best` recipe's models, so the logs give `best` for 3 × 3 seeds and the ensemble for 3.
set -u
data=${1:?DATA_DIR}; out=${2:?OUT_DIR}; shift 2
seeds=${*:-0 3 6}
python=${PYTHON:-python3}
mkdir -p "$out"
{
  nvidia-smi -L; "$python" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  "$python" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -5
} > "$out/cuda-tests.log" 2>&1
for s in $seeds; do
  (SECONDS=0
   OMP_NUM_THREADS=4 "$python" -m convnet train --recipe ensemble --device cuda --seed "$s" \
     --data-dir "$data" --out "/tmp/ensemble-$s" --force
   echo "wall seconds: $SECONDS") > "$out/ensemble-$s.log" 2>&1 &
done
wait
