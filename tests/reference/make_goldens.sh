#!/usr/bin/env bash
# Regenerates tests/data/goldens/: tiny random models (via `arle model init`) and their PyTorch
# reference logits + greedy tokens (via tests/reference/torch_reference.py, Debian python3-torch).
# Usage: tests/reference/make_goldens.sh PATH/TO/arle    (builds nothing itself)
set -euo pipefail

ARLE="${1:-}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/tests/data/goldens"
MODELS="$OUT/models"
PY=/usr/bin/python3
REF="$ROOT/tests/reference/torch_reference.py"

if [[ -z "$ARLE" ]]; then
  echo "usage: $0 PATH/TO/arle" >&2
  echo "  (set ARLE_GOLDEN_PY_INIT=1 to use torch_reference.py's fallback writer instead)" >&2
  [[ "${ARLE_GOLDEN_PY_INIT:-0}" == 1 ]] || exit 2
fi

# Only what this script writes: the model goldens (the kernel and train goldens in subfolders come
# from their own scripts).
rm -rf "$MODELS" "$OUT"/*.json "$OUT"/*.logits.f32
mkdir -p "$MODELS"

# init NAME ARCH DTYPE SEED CONFIG_OVERRIDES_JSON
init() {
  local name="$1" arch="$2" dtype="$3" seed="$4" overrides="$5"
  local dir="$MODELS/$name"
  if [[ -n "$ARLE" ]]; then
    "$ARLE" model init --arch "$arch" --preset tiny --config "$overrides" --dtype "$dtype" \
      --seed "$seed" --out "$dir"
    # The logits do not depend on the tokenizer; the tiny presets ship the full Qwen3 tokenizer
    # (megabytes), so keep the goldens small.
    rm -f "$dir/tokenizer.json" "$dir/tokenizer_config.json"
    # The same weights as GGUF, for the GGUF == safetensors check. GGUF files carry the preset's
    # tokenizer: the Qwen3 one is megabytes, so only small ones are kept.
    if "$ARLE" model init --arch "$arch" --preset tiny --config "$overrides" --dtype "$dtype" \
        --seed "$seed" --format gguf --out "$dir/model.gguf" &&
        [[ $(stat -c %s "$dir/model.gguf") -gt 1500000 ]]; then
      echo "note: $name: GGUF over 1.5 MB (tokenizer), not kept" >&2
      rm -f "$dir/model.gguf"
    fi
  else
    # Fallback: the full config the preset would produce must be given here.
    "$PY" "$REF" init --arch "$arch" --dtype "$dtype" --seed "$seed" --out "$dir" \
      --config "$(PRESET="$arch" OVR="$overrides" "$PY" - <<'EOF'
import json, os
base = {
  "qwen3": {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "head_dim": 16,
            "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
            "intermediate_size": 128, "max_position_embeddings": 4096, "model_type": "qwen3",
            "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000,
            "tie_word_embeddings": True},
  "llama": {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "head_dim": 16,
            "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
            "intermediate_size": 172, "max_position_embeddings": 2048, "mlp_bias": False,
            "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "rope_scaling": None,
            "rope_theta": 10000.0, "tie_word_embeddings": True}}[os.environ["PRESET"]]
base.update(json.loads(os.environ["OVR"]))
print(json.dumps(base))
EOF
)"
  fi
}

# Prompts (token ids < 384, valid for every model): one of 1 token, one of 19 (crosses a 16-token KV block), one of 40.
P1="1"
P19="1,17,300,45,45,99,128,256,7,383,64,65,66,2,200,150,3,310,77"
P40="5,260,34,34,34,190,11,12,13,14,380,222,101,102,103,250,251,9,8,7,6,40,41,42,43,44,300,301,1,2,3,333,120,121,60,61,62,63,199,198"

golden() {
  local name="$1"
  "$PY" "$REF" golden --model "$MODELS/$name" --name "$name" --out-dir "$OUT" \
    --prompt "$P1" --prompt "$P19" --prompt "$P40" --greedy 32
}

# (a) Qwen3: q/k norm, untied head, head_dim 32 != hidden/heads (as in the real Qwen3 shapes), f32.
init qwen3_untied_f32 qwen3 f32 11 \
  '{"vocab_size":384,"tie_word_embeddings":false,"head_dim":32,"bos_token_id":1,"eos_token_id":2}'
# (b) Llama: GQA 4/2, tied head, f32 (vocab 512: the preset's stories260K tokenizer, so the GGUF
# copy is consistent).
init llama_tied_f32 llama f32 12 '{"vocab_size":512,"initializer_range":0.15}'
# (c) Qwen3 with bf16 weights (tied).
init qwen3_bf16 qwen3 bf16 13 '{"vocab_size":384,"initializer_range":0.15,"bos_token_id":1,"eos_token_id":2}'
# (d) Llama with llama3 RoPE scaling (all three frequency bands hit at head_dim 16) and MQA.
init llama_rope3_f32 llama f32 14 \
  '{"vocab_size":512,"initializer_range":0.15,"num_key_value_heads":1,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}}'

# (e) Llama with q/k/v/o and MLP biases, linear RoPE scaling and f16 weights.
init llama_bias_f16 llama f16 15 \
  '{"vocab_size":512,"initializer_range":0.15,"attention_bias":true,"mlp_bias":true,"rope_scaling":{"rope_type":"linear","factor":2.0}}'

# (f) Qwen3 with YaRN RoPE scaling (factor = max_position_embeddings / original, so old and new
# transformers agree), attention factor 0.1 ln(4) + 1 on cos/sin.
init qwen3_yarn_f32 qwen3 f32 16 \
  '{"vocab_size":384,"initializer_range":0.15,"bos_token_id":1,"eos_token_id":2,"max_position_embeddings":128,"rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32}}'

for name in qwen3_untied_f32 llama_tied_f32 qwen3_bf16 llama_rope3_f32 llama_bias_f16 qwen3_yarn_f32; do
  golden "$name"
done
echo "goldens written to $OUT"
