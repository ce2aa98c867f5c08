// Internal to arle_kernels: the f32 GEMM (ref/backward_linear_ref.h's GemmParams) threaded over
// blocks of c, shared by the matmul backwards and MatMul's kGemm order.
#pragma once

#include <algorithm>
#include <cstdint>

#include "arle/kernels/context.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/ref/backward_linear_ref.h"

namespace arle::kernels {

// c in blocks claimed from a shared counter: at most kGemmBlockRows rows, split further into
// column ranges (starting at multiples of kGemmColumnAlign) until there are about four blocks
// per worker (rows first when A is packed per block). The blocks only balance the load: an
// element's bits do not depend on the block it falls in. Tall blocks matter: each block streams all
// of B once per packed A block (and packs B's micro-panels once, when B is a transposed view), so a
// small m split by rows would read a large B (an LM head) once per worker instead of once.
// `after(m_begin, m_end, n_begin, n_end)` runs on each block when it is done. REQUIRES: a CPU
// context.
template <typename After>
void ParallelGemm(const Context& ctx, const GemmParams<float>& p, After after) {
  if (p.m == 0 || p.n == 0) return;
  const bool use_ref = ctx.backend() == Backend::kRef;
  core::ThreadPool& pool = ctx.pool();
  const int64_t want_blocks = 4 * pool.size();
  // A packed per block (a transposed view: dy in the weight gradient) would be packed again
  // for every column range, so such products split rows first (multiples of the tile's six).
  int64_t rows = std::min<int64_t>(p.m, kGemmBlockRows);
  if (p.a_col != 1) {
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
                               cpu::GemmBlock(p, m_begin, m_end, n_begin, n_end);
                             }
                             after(m_begin, m_end, n_begin, n_end);
                           }
                         });
}

}  // namespace arle::kernels
