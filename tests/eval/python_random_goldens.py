#!/usr/bin/python3
"""Writes tests/data/eval/goldens/python_random.json: what CPython's random.Random returns for
fixed seeds (raw 32-bit outputs, getrandbits, random(), _randbelow, sample, shuffle), the oracle of
tests/eval/python_random_test.cc. Run with the system Python (/usr/bin/python3 tests/eval/
python_random_goldens.py from the repository root); never edit the output by hand."""

import json
import os
import random
import sys

SEEDS = [0, 1, 42, 1234, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 12345, 2**64 - 1]
# Both sides of sample()'s pool/set switch: k <= 5 -> n <= 21; k = 6..7 -> 85; k = 8..21 -> 277;
# k = 22..85 -> 1045.
POPULATIONS = [5, 6, 7, 10, 21, 22, 25, 46, 85, 86, 100, 277, 278, 1000, 1172, 10000]
KS = [0, 1, 2, 3, 5, 6, 7, 8, 10, 16, 21, 22, 25]
BITS = [0, 1, 2, 7, 31, 32, 33, 53, 63, 64]
BELOW = [1, 2, 3, 4, 5, 7, 10, 16, 17, 100, 1000, 2**31, 2**32 - 1, 2**32, 2**32 + 3, 2**53 + 1,
         2**63 + 5, 2**64 - 1]


def main():
    out = {"python": sys.version.split()[0], "seeds": []}
    for seed in SEEDS:
        case = {"seed": seed}
        r = random.Random(seed)
        # Past one 624-word refill for the harness's seed and 0; the start for the others.
        case["uint32"] = [r.getrandbits(32) for _ in range(700 if seed in (0, 1234) else 16)]
        r = random.Random(seed)
        case["getrandbits"] = [[k, r.getrandbits(k)] for k in BITS for _ in range(3)]
        r = random.Random(seed)
        case["random"] = [r.random() for _ in range(8)]
        r = random.Random(seed)
        case["randbelow"] = [[n, r._randbelow(n)] for n in BELOW for _ in range(3)]
        # Each sample from a fresh generator, so a failure points at one (n, k).
        grid = SEEDS.index(seed) % 3 == 0 or seed == 1234
        samples = []
        for n in POPULATIONS if grid else [10, 86, 10000]:
            for k in KS if grid else [0, 5, 25]:
                if k <= n:
                    samples.append([n, k, random.Random(seed).sample(range(n), k)])
        case["sample"] = samples
        # One generator through many calls, as the harness's sampler does over a task's docs.
        r = random.Random(seed)
        chain = []
        for i in range(40):
            n = [6, 1172, 7473, 30, 285][i % 5]
            k = [1, 5, 6, 26, 3][i % 5]
            chain.append([n, k, r.sample(range(n), k)])
        case["sample_chain"] = chain
        r = random.Random(seed)
        shuffles = []
        for n in [0, 1, 2, 3, 10, 52, 300]:
            x = list(range(n))
            r.shuffle(x)
            shuffles.append(x)
        case["shuffle"] = shuffles
        out["seeds"].append(case)

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "tests", "data", "eval", "goldens", "python_random.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
