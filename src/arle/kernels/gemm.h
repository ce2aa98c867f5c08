// Internal to arle_kernels: the f32 GEMM (ref/backward_linear_ref.h's GemmParams) threaded over
// blocks of c, shared by the matmul backwards and MatMul's kGemm order.
#pragma once

#include <algorithm>
#include <cstdint>

#include "arle/kernels/context.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/ref/backward_linear_ref.h"

namespace arle::kernels {

// The rows of c from which a row-major B is packed rather than read in place (see ParallelGemm).
inline constexpr int64_t kPackRowMajorBRows = 1024;
// The k from which A's and B's rows stream from memory rather than cache (see ParallelGemm).
inline constexpr int64_t kGemmLongK = 8192;

// c in blocks claimed from a shared counter: at most kGemmBlockRows rows, split further into
// column ranges (starting at multiples of kGemmColumnAlign) until there are about four blocks
// per worker (rows first when A is packed per block). The blocks only balance the load: an
// element's bits do not depend on the block it falls in. Tall blocks matter: each block streams all
// of B once per row block of A, so a small m split by rows would read a large B (an LM head) once
// per worker instead of once.
// `after(m_begin, m_end, n_begin, n_end)` runs on each block when it is done. REQUIRES: a CPU
// context.
template <typename After>
void ParallelGemm(const Context& ctx, const GemmParams<float>& p, After after) {
  if (p.m == 0 || p.n == 0) return;
  const bool use_ref = ctx.backend() == Backend::kRef;
  core::ThreadPool& pool = ctx.pool();
  // B is packed once here, in parallel, into the panels the SIMD kernel reads, for every block,
  // when it is not row-major (MatMul's w, transposed), or when c has so many rows that one copy of
  // B is cheap beside the product: in place, B's rows a power-of-two stride apart fall into a few
  // L1 sets, and its micro-panel does not stay in L1. (Measured at training shapes: packing made
  // the input gradient's dy w, 2048 rows, 6-8 % faster, and the weight gradient of a 256- or
  // 768-row w 6-15 % slower, the copy of x costing more than it saved.)
  const float* packed_b = nullptr;
  if (!use_ref && p.k > 0 && (p.b_col != 1 || p.m >= kPackRowMajorBRows)) {
    float* const dst = cpu::GemmPackedBBuffer(p.k * p.n);
    const int64_t width = cpu::GemmPanelWidth();
    const int64_t panels = (p.n + width - 1) / width;
    pool.ParallelForChunks(panels, width * p.k, /*chunk=*/1, [&](int64_t begin, int64_t end) {
      cpu::PackGemmB(p, begin * width, std::min(p.n, end * width), dst);
    });
    packed_b = dst;
  }
  // A long k (the loss head's input gradient, k = the vocabulary) streams A's and B's rows from
  // memory once per column and row block respectively: fewer blocks there, and rows first when
  // c has more rows than columns (B, k x n, is then the smaller to read again).
  const bool long_k = p.k >= kGemmLongK;
  const int64_t want_blocks = (long_k ? 2 : 4) * pool.size();
  // A packed per block (a transposed view: dy in the weight gradient) would be packed again
  // for every column range, so such products split rows first (multiples of the tile's six).
  int64_t rows = std::min<int64_t>(p.m, kGemmBlockRows);
  if (p.a_col != 1 || (long_k && p.m >= p.n)) {
    const int64_t per_block = (p.m + want_blocks - 1) / want_blocks;
    rows = std::clamp<int64_t>((per_block + 5) / 6 * 6, 6, kGemmBlockRows);
  }
  const int64_t row_blocks = (p.m + rows - 1) / rows;
  const int64_t col_splits = std::max<int64_t>(1, (want_blocks + row_blocks - 1) / row_blocks);
  const int64_t per_split = (p.n + col_splits - 1) / col_splits;
  const int64_t cols = std::max<int64_t>(
      kGemmColumnAlign, (per_split + kGemmColumnAlign - 1) / kGemmColumnAlign * kGemmColumnAlign);
  const int64_t n_blocks = (p.n + cols - 1) / cols;
  pool.ParallelForChunks(row_blocks * n_blocks, rows * cols * std::max<int64_t>(1, p.k),
                         /*chunk=*/1, [&](int64_t b_begin, int64_t b_end) {
                           for (int64_t b = b_begin; b < b_end; ++b) {
                             const int64_t m_begin = b / n_blocks * rows;
                             const int64_t m_end = std::min(p.m, m_begin + rows);
                             const int64_t n_begin = b % n_blocks * cols;
                             const int64_t n_end = std::min(p.n, n_begin + cols);
                             if (use_ref) {
                               ref::GemmBlock(p, m_begin, m_end, n_begin, n_end);
                             } else {
                               cpu::GemmBlock(p, packed_b, m_begin, m_end, n_begin, n_end);
                             }
                             after(m_begin, m_end, n_begin, n_end);
                           }
                         });
}

}  // namespace arle::kernels
