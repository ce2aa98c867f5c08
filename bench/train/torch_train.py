#!/usr/bin/python3
# PyTorch eager side of `arle bench train`: the same model (a Hugging Face directory, or a random
# init made by `arle model init` beforehand) and the same step — forward, cross-entropy, backward,
# AdamW — on random tokens; prints tokens/s and the peak RSS. Run it with a real BLAS and without
# this environment's OpenBLAS overrides, e.g.:
#   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/train/torch_train.py \
#       --model DIR --batch 8 --seq 256 --threads 2
# (Debian's python3-torch uses the reference BLAS unless libopenblas0-pthread is installed.)
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/reference"))
import torch_train  # noqa: E402  (TorchModel: the Qwen3/Llama forward of the equality test)


def loaded_blas():
    """The BLAS library this process actually mapped (Debian links torch against the generic
    libblas.so.3, which the alternatives system points at OpenBLAS or the reference BLAS)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.split()[-1]}
    return sorted(os.path.realpath(p) for p in paths if p.startswith("/"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = torch_train.TorchModel(args.model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    vocab = model.cfg.vocab_size
    gen = torch.Generator().manual_seed(1)

    def step():
        ids = torch.randint(0, vocab, (args.batch, args.seq), generator=gen)
        targets = torch.randint(0, vocab, (args.batch, args.seq), generator=gen)
        opt.zero_grad(set_to_none=False)
        logits = model(ids)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        loss.backward()
        opt.step()

    step()  # warmup
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    secs = time.perf_counter() - start
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({
        "params": n_params, "batch": args.batch, "seq": args.seq, "threads": args.threads,
        "torch": torch.__version__, "blas": loaded_blas(),
        "tokens_per_s": args.batch * args.seq * args.steps / secs,
        "step_s": secs / args.steps,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}))


if __name__ == "__main__":
    main()
