// Scalar reference twins of the linear backward kernels (contracts in backward_linear_ref.h):
// plain loops, one accumulator per output element, indices ascending; instantiated for float and
// double.
#include "arle/kernels/ref/backward_linear_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "arle/kernels/cross_entropy.h"

namespace arle::kernels::ref {

template <typename T>
void GemmBlock(const GemmParams<T>& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
               int64_t n_end) {
  for (int64_t m = m_begin; m < m_end; ++m) {
    T* c = p.c + m * p.n;
    for (int64_t j = n_begin; j < n_end; ++j) {
      T acc = p.accumulate ? c[j] : T(0);
      for (int64_t k = 0; k < p.k; ++k) {
        acc += p.a[m * p.a_row + k * p.a_col] * p.b[k * p.b_row + j * p.b_col];
      }
      c[j] = acc;
    }
  }
}

template <typename T>
void ColumnSums(const T* a, int64_t a_row, int64_t n_rows, bool accumulate, T* sum, int64_t begin,
                int64_t end) {
  for (int64_t j = begin; j < end; ++j) {
    T acc = accumulate ? sum[j] : T(0);
    for (int64_t t = 0; t < n_rows; ++t) acc += a[t * a_row + j];
    sum[j] = acc;
  }
}

template <typename T>
void EmbeddingBackwardColumns(const EmbeddingBackwardParams<T>& p, int64_t c_begin, int64_t c_end) {
  for (int64_t t = 0; t < p.n_tok; ++t) {
    const T* src = p.dout + t * p.n_embd;
    T* dst = p.dtable + static_cast<int64_t>(p.ids[t]) * p.n_embd;
    for (int64_t j = c_begin; j < c_end; ++j) dst[j] += src[j];
  }
}

template <typename T>
void CrossEntropyRows(const CrossEntropyParams<T>& p, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    T* row = p.logits + r * p.n_vocab;
    const int32_t target = p.targets[r];
    if (target == kIgnoreIndex) {
      std::fill(row, row + p.n_vocab, T(0));
      p.losses[r] = 0;
      continue;
    }
    if (p.temperature != T(1)) {
      for (int64_t j = 0; j < p.n_vocab; ++j) row[j] /= p.temperature;
    }
    // d loss / d z = (softmax(z / T) - onehot) * g / T.
    const T g = p.grad_scale * (p.row_scales ? p.row_scales[r] : T(1)) / p.temperature;
    T max = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < p.n_vocab; ++j) max = std::max(max, row[j]);
    T sum = 0;
    for (int64_t j = 0; j < p.n_vocab; ++j) sum += std::exp(row[j] - max);
    p.losses[r] = (max + std::log(sum)) - row[target];
    const T scale = g / sum;
    for (int64_t j = 0; j < p.n_vocab; ++j) row[j] = std::exp(row[j] - max) * scale;
    row[target] -= g;
  }
}

#define ARLE_INSTANTIATE(T)                                                                       \
  template void GemmBlock<T>(const GemmParams<T>&, int64_t, int64_t, int64_t, int64_t);           \
  template void ColumnSums<T>(const T*, int64_t, int64_t, bool, T*, int64_t, int64_t);            \
  template void EmbeddingBackwardColumns<T>(const EmbeddingBackwardParams<T>&, int64_t, int64_t); \
  template void CrossEntropyRows<T>(const CrossEntropyParams<T>&, int64_t, int64_t);
ARLE_INSTANTIATE(float)
ARLE_INSTANTIATE(double)
#undef ARLE_INSTANTIATE

}  // namespace arle::kernels::ref
