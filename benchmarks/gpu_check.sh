#!/usr/bin/env bash
# The GPU check (issue 12): what needs a CUDA GPU, in at most 8 minutes on one GPU
# (GPU_CHECK_SECONDS=480; each part is cut at what is left, most important first).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default benchmarks/results
#
# 1. the CUDA tests (tests/test_cuda.py): our trainer and the TRL integration step in bf16;
# 2. multi-turn household with an untrained 64M-parameter embedded Qwen2 (bf16 autocast,
#    fp32 master weights): our trainer and TRL GRPOTrainer + spear, s/step, generated
#    tokens/s and peak GPU memory (benchmarks/bench_trl_household.py);
#    and our trainer's step again with the compiled decoder (rollout.decode=compiled);
# 3. batched decoding at the Qwen2.5-0.5B and -1.5B shapes against the roofline, eager and
#    compiled (benchmarks/bench_decode.py).
# It writes OUT_DIR/gpu_check.json (the benchmark's numbers) and OUT_DIR/gpu_check.md
# (GPU, versions, test summary, table); the committed runs are renamed per GPU
# (benchmarks/results/gpu_check_h100.*, gpu_check_h200.*), which the README quotes.
# Needs python3 with torch (CUDA), transformers, accelerate and trl==1.16.0 importable,
# and this checkout on the path.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-benchmarks/results}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TRL_EXPERIMENTAL_SILENCE=1 PYTHONUNBUFFERED=1

GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)
VERSIONS=$("$PY" -c "import torch, transformers, trl; print(f'torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}')")
echo "GPU: $GPU"; echo "$VERSIONS"

start=$(date +%s)
# Every part runs under a cap and under what is left of the whole check's budget (8 minutes:
# a lent GPU's time is short), most important first; a part that is cut or skipped says so.
DEADLINE=$((start + ${GPU_CHECK_SECONDS:-480}))
part() {  # part CAP LOG WHAT COMMAND...: run COMMAND for at most min(CAP, budget left) seconds
  local cap=$1 log=$2 what=$3 left
  shift 3
  left=$((DEADLINE - $(date +%s)))
  if ((left < 20)); then
    echo "$what: skipped, the check's budget is spent" | tee -a "$log"
    return
  fi
  ((cap > left)) && cap=$left
  timeout "$cap" "$@" | tee -a "$log" || echo "$what: failed or did not finish in $cap s" | tee -a "$log"
}
: > "$OUT_DIR/gpu_check.txt"
: > "$OUT_DIR/gpu_decode.txt"
TESTS=$(timeout 120 "$PY" -m pytest -p no:warnings -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -n 1 || true)
echo "CUDA tests: $TESTS"

# 64M parameters: 10 layers, hidden 768, 12 heads (4 KV heads), MLP 2048, vocab 1024
SIZE=(model.embedded.hidden_size=768 model.embedded.num_layers=10 model.embedded.num_heads=12
      model.embedded.num_kv_heads=4 model.embedded.intermediate_size=2048 model.embedded.vocab_size=1024)
# 2. the household step, ours and TRL + spear (eager decoding: the baseline of issue 38's
#    target, 5x faster than 8.3 s on an H100), then ours with the compiled decoder, whose
#    shape buckets compile during its warm-up step
part 150 "$OUT_DIR/gpu_check.txt" "household step, eager" \
  "$PY" benchmarks/bench_trl_household.py --model scratch --steps 3 --warmup 1 \
  --json "$OUT_DIR/gpu_check.json" "${SIZE[@]}" rollout.tasks_per_step=8
part 150 "$OUT_DIR/gpu_check.txt" "household step, compiled decoder" \
  "$PY" benchmarks/bench_trl_household.py --model scratch --steps 2 --warmup 1 --sides ours \
  --json "$OUT_DIR/gpu_check_compiled.json" "${SIZE[@]}" rollout.tasks_per_step=8 rollout.decode=compiled
# 3. decoding at real shapes (issue 38): Qwen2.5-0.5B and -1.5B built from their configs with
#    random weights, 128 prompt + 128 new tokens per row, against the roofline, with the
#    eager decoder, then one shape per model compiled (CUDA graphs), then the 0.5B shape with
#    transformers' continuous batching (generate_batch), the other fast path
part 90 "$OUT_DIR/gpu_decode.txt" "0.5B eager" "$PY" benchmarks/bench_decode.py --model qwen2.5-0.5b \
  --batch 64,256,512 --json "$OUT_DIR/gpu_decode_0.5b.json"
part 120 "$OUT_DIR/gpu_decode.txt" "0.5B compiled" "$PY" benchmarks/bench_decode.py --model qwen2.5-0.5b \
  --batch 256 --decode compiled --json "$OUT_DIR/gpu_decode_0.5b_compiled.json"
part 120 "$OUT_DIR/gpu_decode.txt" "1.5B eager and compiled" "$PY" benchmarks/bench_decode.py \
  --model qwen2.5-1.5b --batch 256 --decode eager,compiled --json "$OUT_DIR/gpu_decode_1.5b.json"
part 90 "$OUT_DIR/gpu_decode.txt" "0.5B transformers-cb" "$PY" benchmarks/bench_decode.py \
  --model qwen2.5-0.5b --batch 256 --decode transformers-cb --json "$OUT_DIR/gpu_decode_0.5b_cb.json"
end=$(date +%s)

{
  echo "# GPU check ($(date -u +%Y-%m-%d))"
  echo
  echo "- GPU: $GPU"
  echo "- $VERSIONS"
  echo "- CUDA tests (tests/test_cuda.py): $TESTS"
  echo "- wall time of the whole check: $((end - start)) s"
  echo
  echo '```'
  cat "$OUT_DIR/gpu_check.txt"
  echo '```'
  echo
  echo '```'
  cat "$OUT_DIR/gpu_decode.txt"
  echo '```'
} > "$OUT_DIR/gpu_check.md"
rm "$OUT_DIR/gpu_check.txt" "$OUT_DIR/gpu_decode.txt"
cat "$OUT_DIR/gpu_check.md"
