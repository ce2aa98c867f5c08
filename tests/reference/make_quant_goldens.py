#!/usr/bin/env python3
"""Goldens for the GGUF block formats arle reads: random blocks and their values as f32.

An independent numpy transcription of the GGUF block definitions (ggml-common.h's block_q8_0,
block_q4_0, block_q4_K, block_q5_K, block_q6_K and the dequantize_row_* formulas of
ggml-quants.c). Every float operation is a separate f32 operation, as ggml's C code computes it
(no fused multiply-add), so the C++ reference must match bit for bit.

Usage: /usr/bin/python3 tests/reference/make_quant_goldens.py   (needs numpy)
Writes tests/data/quant/dequant_goldens.bin:
  b"ARLEQG1\\0", u32 n_sections, then per section:
  8-byte name (e.g. b"q4_k\\0\\0\\0\\0"), u32 n_blocks, u32 block_bytes, the blocks,
  then n_blocks * block_elems little-endian f32 values.
"""
import os
import struct

import numpy as np

F32 = np.float32


def f16(b, off):
    return F32(np.frombuffer(bytes(b[off:off + 2]), dtype="<f2")[0])


def q8_0(b):
    d = f16(b, 0)
    q = np.frombuffer(bytes(b[2:34]), dtype=np.int8).astype(F32)
    return q * d


def q4_0(b):
    d = f16(b, 0)
    qs = np.frombuffer(bytes(b[2:18]), dtype=np.uint8).astype(np.int32)
    q = np.concatenate([(qs & 15) - 8, (qs >> 4) - 8]).astype(F32)
    return q * d


def scale_min_k4(j, s):
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    return (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)


def k4k5(d, dmin, s, qh, qs):
    """Q4_K (qh None) and Q5_K: 4 chunks of 64 values, two sub-blocks each."""
    y = np.zeros(256, dtype=F32)
    for i in range(4):
        sc1, m1 = scale_min_k4(2 * i, s)
        sc2, m2 = scale_min_k4(2 * i + 1, s)
        d1, mm1 = d * F32(sc1), dmin * F32(m1)
        d2, mm2 = d * F32(sc2), dmin * F32(m2)
        ql = qs[32 * i:32 * i + 32]
        lo, hi = ql & 15, ql >> 4
        if qh is not None:
            lo = lo + np.where(qh & (1 << (2 * i)), 16, 0)
            hi = hi + np.where(qh & (2 << (2 * i)), 16, 0)
        y[64 * i:64 * i + 32] = d1 * lo.astype(F32) - mm1
        y[64 * i + 32:64 * i + 64] = d2 * hi.astype(F32) - mm2
    return y


def u8(b, lo, hi):
    return np.frombuffer(bytes(b[lo:hi]), dtype=np.uint8).astype(np.int32)


def q4_k(b):
    return k4k5(f16(b, 0), f16(b, 2), list(b[4:16]), None, u8(b, 16, 144))


def q5_k(b):
    return k4k5(f16(b, 0), f16(b, 2), list(b[4:16]), u8(b, 16, 48), u8(b, 48, 176))


def q6_k(b):
    ql = np.frombuffer(bytes(b[0:128]), dtype=np.uint8).astype(np.int32)
    qh = np.frombuffer(bytes(b[128:192]), dtype=np.uint8).astype(np.int32)
    sc = np.frombuffer(bytes(b[192:208]), dtype=np.int8).astype(F32)
    d = f16(b, 208)
    y = np.zeros(256, dtype=F32)
    for n in range(2):
        L, H, S = ql[64 * n:], qh[32 * n:], sc[8 * n:]
        for l in range(32):
            i = l // 16
            q1 = ((L[l] & 15) | (((H[l] >> 0) & 3) << 4)) - 32
            q2 = ((L[l + 32] & 15) | (((H[l] >> 2) & 3) << 4)) - 32
            q3 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32
            q4 = ((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32
            base = 128 * n + l
            y[base] = d * S[i] * F32(q1)
            y[base + 32] = d * S[i + 2] * F32(q2)
            y[base + 64] = d * S[i + 4] * F32(q3)
            y[base + 96] = d * S[i + 6] * F32(q4)
    return y


# name, block bytes, offsets of f16 fields, dequantizer
FORMATS = [
    ("q8_0", 34, [0], q8_0),
    ("q4_0", 18, [0], q4_0),
    ("q4_k", 144, [0, 2], q4_k),
    ("q5_k", 176, [0, 2], q5_k),
    ("q6_k", 210, [208], q6_k),
]


def random_block(rng, size, f16_offsets, k):
    b = bytearray(rng.integers(0, 256, size=size, dtype=np.uint8).tobytes())
    for off in f16_offsets:
        # Mostly ordinary scales; block 0 has zero scales, block 1 negative ones, block 2 tiny
        # (subnormal f16) ones, so every path of the f16 conversion is crossed.
        if k == 0:
            v = 0.0
        elif k == 1:
            v = -abs(rng.normal(0, 0.05))
        elif k == 2:
            v = 3e-6 * rng.normal()
        else:
            v = rng.normal(0, 0.05)
        b[off:off + 2] = np.array([v], dtype="<f2").tobytes()
    return b


def main():
    rng = np.random.default_rng(20261126)
    out = bytearray(b"ARLEQG1\0")
    out += struct.pack("<I", len(FORMATS))
    n_blocks = 12
    for name, size, f16_offsets, fn in FORMATS:
        blocks = [random_block(rng, size, f16_offsets, k) for k in range(n_blocks)]
        values = np.concatenate([fn(b) for b in blocks]).astype("<f4")
        assert np.all(np.isfinite(values))
        out += name.encode().ljust(8, b"\0") + struct.pack("<II", n_blocks, size)
        for b in blocks:
            out += b
        out += values.tobytes()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "data", "quant", "dequant_goldens.bin")
    with open(path, "wb") as f:
        f.write(out)
    print(f"wrote {path} ({len(out)} bytes)")


if __name__ == "__main__":
    main()
