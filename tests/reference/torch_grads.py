#!/usr/bin/python3
# Float64 PyTorch gradients of every parameter of a Qwen3/Llama model (read from its Hugging Face
# directory) for one batch: the first `--batch` windows of `--seq` + 1 tokens of a token stream,
# the loss being the mean cross-entropy over the batch's tokens (what one micro-batch of
# `arle train pretrain --no-shuffle` differentiates). Written as an F32 safetensors file with the
# model's tensor names. Run with Debian's /usr/bin/python3 (python3-torch); used by
# make_train_goldens.sh.
"""torch_grads.py --model DIR --ids IDS.json --batch 2 --seq 32 --out GRADS.safetensors"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402  (safetensors writer)
from torch_train import TorchModel  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(args.ids) as f:
        ids = json.load(f)["ids"]
    rows = [ids[w * args.seq:w * args.seq + args.seq + 1] for w in range(args.batch)]
    if any(len(r) != args.seq + 1 for r in rows):
        sys.exit("the token stream is shorter than the batch")
    t = torch.tensor(rows)
    model = TorchModel(args.model, torch.float64)
    logits = model(t[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             t[:, 1:].reshape(-1), reduction="mean")
    loss.backward()
    ref.write_safetensors(args.out, [(name, model.w(name).grad.numpy()) for name in model.names],
                          "f32")
    print(json.dumps({"loss": float(loss), "tensors": len(model.names)}))


if __name__ == "__main__":
    main()
