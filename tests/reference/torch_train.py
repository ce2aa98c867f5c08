#!/usr/bin/python3
# PyTorch reference for `arle train`: the same Qwen3/Llama model (read from the same Hugging Face
# directory), the same token windows and the same AdamW step, in float32, printing per-step losses.
# Run with Debian's /usr/bin/python3 (python3-torch); used by make_train_goldens.sh.
"""PyTorch training reference.

  torch_train.py --model DIR --ids IDS.json --steps 20 --batch 2 --seq 16 [--accum 1]
                 [--lr 1e-3] [--schedule constant|linear-warmup|cosine] [--warmup 0]
                 [--min-lr 0] [--weight-decay 0.01] [--clip 1.0] [--lora-rank 0 --lora-alpha 16
                 --lora-targets q_proj,v_proj --lora-seed 0]

IDS.json: {"ids": [...]} the token stream (pretraining), or the output of
`arle train sft --dry-run --json` (SFT: its records' ids and loss masks; label[t] = ids[t+1] where
token t+1 has loss 1, else ignored; micro-batch m of step k takes record (k*accum + m) mod n).
LoRA: A is initialised exactly as arle does (core/random.h's xoshiro256** seeded with --lora-seed,
U(-1/sqrt(in), 1/sqrt(in)) per layer, per target in q,k,v,o,gate,up,down order), B = 0. Windows (no shuffle): the stream is cut into windows of
seq+1 tokens at offsets 0, seq, 2*seq, ...; micro-batch m of step k takes windows
(k*accum + m)*B ... +B-1 (wrapping around the window list). The step's loss is the mean cross-entropy
over all predicted tokens of its micro-batches. Prints one JSON object per step:
{"step", "loss", "lr", "grad_norm"}.
"""

import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402  (Config, RoPE, safetensors reader)

IGNORE = -100


class TorchModel(torch.nn.Module):
    """Hugging Face Qwen3/Llama forward over a [B, T] batch, parameters in `dtype` (float32 for
    the training reference, float64 for the gradient goldens)."""

    def __init__(self, model_dir, dtype=torch.float32):
        super().__init__()
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = ref.Config(json.load(f))
        tensors = ref.load_model_tensors(model_dir)
        self.names = []
        for name, t in tensors.items():
            p = torch.nn.Parameter(t.to(dtype).clone())
            self.register_parameter(name.replace(".", "__"), p)
            self.names.append(name)
        inv_freq, self.attn_scaling = ref.rope_inv_freq(self.cfg)
        self.inv_freq = inv_freq.to(dtype)
        self.lora = {}  # module name -> (A, B, scale)

    def w(self, name):
        return getattr(self, name.replace(".", "__"))

    def linear(self, x, name):
        y = x @ self.w(name + ".weight").T
        if name in self.lora:
            a, b, s = self.lora[name]
            y = y + s * ((x @ a.T) @ b.T)
        bias = name + ".bias"
        return y if bias not in self.names else y + self.w(bias)

    def rms_norm(self, x, name):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.w(name + ".weight") * (x * torch.rsqrt(var + self.cfg.eps))

    def forward(self, ids):
        c = self.cfg
        bsz, t = ids.shape
        x = self.w("model.embed_tokens.weight")[ids]
        pos = torch.arange(t, dtype=self.inv_freq.dtype)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attn_scaling
        sin = emb.sin() * self.attn_scaling
        mask = torch.full((t, t), float("-inf")).triu(1)
        n_rep = c.n_heads // c.n_kv_heads
        for i in range(c.n_layers):
            p = f"model.layers.{i}."
            h = self.rms_norm(x, p + "input_layernorm")
            q = self.linear(h, p + "self_attn.q_proj").view(bsz, t, c.n_heads, c.head_dim)
            k = self.linear(h, p + "self_attn.k_proj").view(bsz, t, c.n_kv_heads, c.head_dim)
            v = self.linear(h, p + "self_attn.v_proj").view(bsz, t, c.n_kv_heads, c.head_dim)
            if c.qk_norm:
                q = self.rms_norm(q, p + "self_attn.q_norm")
                k = self.rms_norm(k, p + "self_attn.k_norm")
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            q = q * cos + ref.rotate_half(q) * sin
            k = k * cos + ref.rotate_half(k) * sin
            k = k.repeat_interleave(n_rep, dim=1)
            v = v.repeat_interleave(n_rep, dim=1)
            scores = (q @ k.transpose(2, 3)) * (c.head_dim ** -0.5) + mask
            probs = torch.softmax(scores, dim=-1)
            attn = (probs @ v).transpose(1, 2).reshape(bsz, t, c.n_heads * c.head_dim)
            x = x + self.linear(attn, p + "self_attn.o_proj")
            h = self.rms_norm(x, p + "post_attention_layernorm")
            gate = self.linear(h, p + "mlp.gate_proj")
            up = self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj")
        x = self.rms_norm(x, "model.norm")
        head = "lm_head.weight" if "lm_head.weight" in self.names and not c.tie else \
            "model.embed_tokens.weight"
        return x @ self.w(head).T


def lr_factor(step, args):
    """The learning-rate multiplier of update `step` (0 = the first), as transformers'
    get_constant_schedule_with_warmup / get_cosine_with_min_lr_schedule_with_warmup."""
    if args.schedule == "constant":
        return 1.0
    if step < args.warmup:
        return step / max(1, args.warmup)
    if args.schedule == "linear-warmup":
        return 1.0
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    min_rate = args.min_lr / args.lr
    return cosine * (1.0 - min_rate) + min_rate


class ArleRng:
    """arle::core::Rng: xoshiro256** seeded by SplitMix64 (core/random.h)."""
    M = (1 << 64) - 1

    def __init__(self, seed):
        x = seed & self.M
        self.s = []
        for _ in range(4):
            x = (x + 0x9e3779b97f4a7c15) & self.M
            z = x
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & self.M
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & self.M
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & ArleRng.M

    def next_u64(self):
        s = self.s
        result = (self.rotl((s[1] * 5) & self.M, 7) * 9) & self.M
        t = (s[1] << 17) & self.M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next_u64() >> 11) * 2.0 ** -53


PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def batches(args):
    """Yields, per step, a list of (inputs [B, T], labels [B, T]) micro-batches."""
    with open(args.ids) as f:
        data = json.load(f)
    if "records" in data:  # SFT: arle's dry run, one record per micro-batch (batch 1)
        mbs = []
        for r in data["records"]:
            ids = [t["id"] for t in r["tokens"]]
            loss = [t["loss"] for t in r["tokens"]]
            labels = [ids[t + 1] if loss[t + 1] else IGNORE for t in range(len(ids) - 1)]
            mbs.append((torch.tensor([ids[:-1]]), torch.tensor([labels])))
        for k in range(args.steps):
            yield [mbs[(k * args.accum + m) % len(mbs)] for m in range(args.accum)]
        return
    ids = data["ids"]
    n_windows = (len(ids) - 1) // args.seq
    windows = [ids[w * args.seq:w * args.seq + args.seq + 1] for w in range(n_windows)]
    for k in range(args.steps):
        step = []
        for m in range(args.accum):
            first = (k * args.accum + m) * args.batch
            rows = [windows[(first + b) % n_windows] for b in range(args.batch)]
            t = torch.tensor(rows)
            step.append((t[:, :-1], t[:, 1:]))
        yield step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--accum", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", default="constant")
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--min-lr", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--lora-alpha", type=float, default=16.0)
    ap.add_argument("--lora-targets", default="q_proj,v_proj")
    ap.add_argument("--lora-seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TorchModel(args.model)

    if args.lora_rank > 0:
        for p in model.parameters():
            p.requires_grad_(False)
        rng = ArleRng(args.lora_seed)
        lora_params = []
        wanted = args.lora_targets.split(",")
        targets = PROJECTIONS if "all-linear" in wanted else [p for p in PROJECTIONS if p in wanted]
        for i in range(model.cfg.n_layers):
            for mod in targets:
                block = "self_attn" if mod in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
                name = f"model.layers.{i}.{block}.{mod}"
                out, fan_in = model.w(name + ".weight").shape
                bound = 1.0 / math.sqrt(fan_in)
                vals = [(2.0 * rng.uniform() - 1.0) * bound for _ in range(args.lora_rank * fan_in)]
                a = torch.nn.Parameter(
                    torch.tensor(vals, dtype=torch.float64).to(torch.float32).view(
                        args.lora_rank, fan_in))
                b = torch.nn.Parameter(torch.zeros(out, args.lora_rank))
                model.lora[name] = (a, b, args.lora_alpha / args.lora_rank)
                lora_params += [a, b]
        groups = [{"params": lora_params, "weight_decay": args.weight_decay}]
        trainable = lora_params
    else:
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": args.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        trainable = list(model.parameters())
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, args))

    for k, micro in enumerate(batches(args)):
        opt.zero_grad(set_to_none=False)
        n_total = sum(int((lab != IGNORE).sum()) for _, lab in micro)
        loss_sum = 0.0
        for inputs, labels in micro:
            logits = model(inputs)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                ignore_index=IGNORE, reduction="sum")
            (loss / n_total).backward()
            loss_sum += float(loss)
        if args.clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(trainable, args.clip))
        else:
            norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in trainable))
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        print(json.dumps({"step": k + 1, "loss": loss_sum / n_total, "lr": lr,
                          "grad_norm": norm}))


if __name__ == "__main__":
    main()
