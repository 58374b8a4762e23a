#!/usr/bin/env bash
# The prepared GPU check: one command that needs only DATA_DIR (a folder holding cifar10/).
#   DATA_DIR=/path benchmarks/gpu_check.sh RESULTS_DIR MINUTES
# 1. the tests marked gpu (device-resident data, bf16 NT-Xent against fp32, ...);
# 2. the paper Table 1 rehearsal (every cell cut to a couple of batches) before anything long,
#    and the RobustSSL protocol's at its paper scale (adversarial SimCLR's SLF / ALF / AFF,
#    AutoAttack, the 75 corrupted sets; `make robustssl REHEARSE=1`);
# 3. the budget benchmark of the paper profile on the GPU, with Table 1's wall time on 1 and 8
#    GPUs and the RobustSSL table's minutes (JSON in RESULTS_DIR);
# 4. `make table1 PROFILE=paper WANDB=off SEEDS=0` (CIFAR-10 train as the pretraining set),
#    cell after cell, until MINUTES have passed; finished cells leave their JSONs.
# Everything, the log included, lands in RESULTS_DIR. It runs with the python3 on PATH (PY=...
# to choose another), which must import torch, pytorch_lightning, torchmetrics, kornia,
# jsonargparse and pyautoattack; W&B is not needed.
set -uo pipefail
results=${1:?usage: DATA_DIR=... $0 RESULTS_DIR MINUTES}
minutes=${2:?usage: DATA_DIR=... $0 RESULTS_DIR MINUTES}
data=${DATA_DIR:?set DATA_DIR to the folder that holds cifar10/}
py=${PY:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$results"
results=$(cd "$results" && pwd)
exec > >(tee -a "$results/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 WANDB=off
start=$(date +%s)
nvidia-smi -L || echo "no nvidia-smi"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

echo "== 1. tests marked gpu"
"$py" -m pytest -q -m gpu -p no:cacheprovider tests/ || echo "gpu tests FAILED"

echo "== 2. rehearsal of the paper Table 1"
make --no-print-directory table1 PROFILE=paper REHEARSE=1 WANDB=off DOWNLOAD=0 \
    PRETRAIN_DATA=cifar10 DATA_DIR="$data" RESULTS="$results" PY="$py" || echo "rehearsal FAILED"
make --no-print-directory robustssl PROFILE=paper REHEARSE=1 PROJECTION=0 WANDB=off DOWNLOAD=0 \
    OURS=adv_simclr PRETRAIN_DATA=cifar10 DATA_DIR="$data" RESULTS="$results" PY="$py" \
    || echo "robustssl rehearsal FAILED"

echo "== 3. budget benchmark, paper profile"
"$py" benchmarks/budget.py --profile paper --device cuda --steps 10 --autoattack 16 \
    --devices 1 8 --json "$results/budget-paper.json" || echo "budget benchmark FAILED"

left=$(( minutes * 60 - ($(date +%s) - start) ))
echo "== 4. make table1 PROFILE=paper for the remaining ${left}s"
if (( left > 60 )); then
    timeout --signal=INT "$left" make --no-print-directory table1 PROFILE=paper WANDB=off SEEDS=0 \
        DOWNLOAD=0 PRETRAIN_DATA=cifar10 DATA_DIR="$data" RESULTS="$results" PY="$py"
    echo "make exited with $?"
fi
echo "finished cells:"; ls "$results"/paper/*.json 2>/dev/null || echo "  none"
echo "gpu_check: $(( $(date +%s) - start ))s"
