#!/usr/bin/env bash
# Regenerates tests/data/goldens/train/{pretrain_llama,pretrain_qwen3,sft_lora_qwen3}.jsonl: the
# per-step losses of PyTorch (tests/reference/torch_train.py, Debian python3-torch) on the same
# models, windows and updates that tests/e2e/train_test.py runs through `arle train`.
# Usage: tests/reference/make_train_goldens.sh PATH/TO/arle
set -euo pipefail
ARLE="${1:?usage: $0 PATH/TO/arle}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/tests/data/goldens/train"
PY=/usr/bin/python3
TRAIN="$ROOT/tests/reference/torch_train.py"
CORPUS="$ROOT/tests/data/train/tinyshakespeare_head.txt"
CHAT="$ROOT/tests/data/train/sft_chat.jsonl"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

# The models: tests/e2e/train_test.py makes the same ones with the same commands.
"$ARLE" model init --arch llama --preset tiny --seed 7 --out "$TMP/llama" >/dev/null
"$ARLE" model init --arch qwen3 --preset tiny --seed 7 --config '{"vocab_size": 512}' \
  --out "$TMP/qwen3" >/dev/null
cp "$TMP/llama/tokenizer.json" "$TMP/llama/tokenizer_config.json" "$TMP/qwen3/"
"$ARLE" model init --arch qwen3 --preset tiny --seed 7 --out "$TMP/qwen3_chat" >/dev/null

# The token stream `arle train pretrain` reads: the file encoded with special tokens (BOS), EOS
# appended (tok512: </s> = 2).
"$ARLE" tokenize -m "$TMP/llama" --file "$CORPUS" --no-parse-special --json |
  "$PY" -c 'import json, sys; d = json.load(sys.stdin); json.dump({"ids": d["ids"] + [2]}, sys.stdout)' \
  >"$TMP/ids.json"

# 20 AdamW steps: 2 micro-batches of 2 x 32 tokens per step, cosine schedule with warmup,
# clipping at 1, weight decay 0.01 on matrices. The e2e test passes the same flags.
PRETRAIN=(--steps 20 --batch 2 --seq 32 --accum 2 --lr 3e-3 --schedule cosine --warmup 3
          --min-lr 3e-4 --weight-decay 0.01 --clip 1.0)
"$PY" "$TRAIN" --model "$TMP/llama" --ids "$TMP/ids.json" "${PRETRAIN[@]}" \
  >"$OUT/pretrain_llama.jsonl"
"$PY" "$TRAIN" --model "$TMP/qwen3" --ids "$TMP/ids.json" "${PRETRAIN[@]}" \
  >"$OUT/pretrain_qwen3.jsonl"

# Float64 gradients of every parameter for the first micro-batch of those runs (2 windows of 32
# tokens): e2e_train recovers arle's from one SGD step and compares.
GRADS="$ROOT/tests/reference/torch_grads.py"
"$PY" "$GRADS" --model "$TMP/llama" --ids "$TMP/ids.json" --batch 2 --seq 32 \
  --out "$OUT/grads_llama.safetensors" >/dev/null
"$PY" "$GRADS" --model "$TMP/qwen3" --ids "$TMP/ids.json" --batch 2 --seq 32 \
  --out "$OUT/grads_qwen3.safetensors" >/dev/null

# LoRA SFT on chat records (Qwen3 template and tokenizer): arle's dry run gives the records'
# ids and loss masks; A is seeded as arle seeds it (--seed 3).
"$ARLE" train sft --model "$TMP/qwen3_chat" --data "$CHAT" --seq 128 --dry-run --json \
  --dry-run-records 1000 >"$TMP/sft.json"
"$PY" "$TRAIN" --model "$TMP/qwen3_chat" --ids "$TMP/sft.json" --steps 20 --batch 1 --seq 128 \
  --lr 1e-2 --schedule constant --weight-decay 0.01 --clip 1.0 --lora-rank 4 --lora-alpha 8 \
  --lora-targets q_proj,v_proj,down_proj --lora-seed 3 >"$OUT/sft_lora_qwen3.jsonl"
echo "wrote $OUT/{pretrain_llama,pretrain_qwen3,sft_lora_qwen3}.jsonl and grads_{llama,qwen3}.safetensors"
