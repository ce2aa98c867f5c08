#!/usr/bin/env bash
# Batched against one-request-at-a-time evaluation, interleaved rounds on the same machine:
#
#   bench/eval/batching.sh ARLE MODEL HELLASWAG_FILE [N_TASKS=200] [ROUNDS=2]
#
# Runs `arle eval mc --task hellaswag --limit N_TASKS` three ways per round: batched (the
# default: many requests in flight, shared contexts from the prefix cache), one request at a time
# (--max-in-flight 1, the prefix cache still on), and one at a time without the prefix cache (every
# choice recomputes its context, as a naive harness loop does). Prints each run's seconds and the
# ratios; the scores must be identical across the three (the determinism contract).
set -euo pipefail
ARLE=${1:?usage: $0 ARLE MODEL HELLASWAG_FILE [N_TASKS] [ROUNDS]}
MODEL=${2:?model}
DATA=${3:?hellaswag file (llama.cpp text format or HF JSONL)}
N=${4:-200}
ROUNDS=${5:-2}
run() {  # prints "seconds acc acc_norm"
  "$ARLE" eval mc --task hellaswag --data "$DATA" --limit "$N" --model "$MODEL" --json "$@" \
      2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); m=j["metrics"];
print(j["seconds"], m["acc"], m["acc_norm"])'
}
echo "| round | batched s | one at a time s | one at a time, no cache s | ratio | ratio (no cache) |"
echo "|---:|---:|---:|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  read -r tb ab nb < <(run)
  read -r ts as ns < <(run --max-in-flight 1)
  read -r tn an nn < <(run --max-in-flight 1 --no-prefix-cache)
  if [ "$ab $nb" != "$as $ns" ] || [ "$ab $nb" != "$an $nn" ]; then
    echo "scores differ: $ab/$nb $as/$ns $an/$nn" >&2
    exit 1
  fi
  /usr/bin/python3 -c "print(f'| $r | {$tb:.1f} | {$ts:.1f} | {$tn:.1f} | {$ts/$tb:.2f}x | {$tn/$tb:.2f}x |')"
done
