// Scalar reference twins of the linear backward kernels (matmul backward as one GEMM, embedding
// backward, cross-entropy) as templates over the element type: float is the oracle of the SIMD
// kernels, double the finite-difference tests' exact-enough arithmetic. Also the parameter
// blocks the dispatchers (kernels/*.cc) hand to ref/ and cpu/.
#pragma once

#include <cstdint>

namespace arle::kernels {

// c[m, n] = (accumulate ? c[m, n] : 0) + sum_k A(m, k) * B(k, n), with A(m, k) =
// a[m * a_row + k * a_col] and B(k, n) = b[k * b_row + n * b_col] (so either may be a transposed
// view), c row-major with rows n apart. Each element is one chain of multiply-adds over k in
// ascending order. MatMulBackwardInput is (a = dy, b = w); MatMulBackwardWeight is (a = dy
// transposed, b = x); MatMul's kGemm order is (a = x, b = w transposed).
// Column blocks of a GEMM start at multiples of this (a multiple of every SIMD target's tile
// width), so a column is computed by the same code (vector or the scalar tail) however c is split.
inline constexpr int64_t kGemmColumnAlign = 64;
// The most rows of c one GEMM block covers (ParallelGemm's blocks; the SIMD kernel's packed A).
inline constexpr int64_t kGemmBlockRows = 384;

template <typename T>
struct GemmParams {
  const T* a = nullptr;
  int64_t a_row = 0, a_col = 0;
  const T* b = nullptr;
  int64_t b_row = 0, b_col = 0;
  T* c = nullptr;  // [m, n]
  int64_t m = 0, n = 0, k = 0;
  bool accumulate = false;
};

// dtable[ids[t], j] += dout[t, j], t ascending.
template <typename T>
struct EmbeddingBackwardParams {
  const T* dout = nullptr;       // [n_tok, n_embd]
  const int32_t* ids = nullptr;  // [n_tok], checked in range
  T* dtable = nullptr;           // [n_vocab, n_embd]
  int64_t n_tok = 0, n_embd = 0;
};

// Cross-entropy rows (kernels/cross_entropy.h), logits replaced by their gradient.
template <typename T>
struct CrossEntropyParams {
  T* logits = nullptr;               // [n_rows, n_vocab]
  const int32_t* targets = nullptr;  // [n_rows], checked: kIgnoreIndex or in range
  T* losses = nullptr;               // [n_rows]
  int64_t n_rows = 0, n_vocab = 0;
  T grad_scale = 1;
  const T* row_scales = nullptr;  // [n_rows] or null (all 1)
  T temperature = 1;              // rows are divided by it first
};

}  // namespace arle::kernels

namespace arle::kernels::ref {

// The block rows [m_begin, m_end) x columns [n_begin, n_end) of c (one scalar accumulator per
// element, k ascending). n_begin is a multiple of kGemmColumnAlign (or 0).
template <typename T>
void GemmBlock(const GemmParams<T>& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
               int64_t n_end);
// sum[j] (+)= sum_t a[t * a_row + j], t ascending, for columns j in [begin, end) (dbias).
template <typename T>
void ColumnSums(const T* a, int64_t a_row, int64_t n_rows, bool accumulate, T* sum, int64_t begin,
                int64_t end);
// Columns [c_begin, c_end) of every row named by ids.
template <typename T>
void EmbeddingBackwardColumns(const EmbeddingBackwardParams<T>& p, int64_t c_begin, int64_t c_end);
// Rows [begin, end).
template <typename T>
void CrossEntropyRows(const CrossEntropyParams<T>& p, int64_t begin, int64_t end);

}  // namespace arle::kernels::ref
