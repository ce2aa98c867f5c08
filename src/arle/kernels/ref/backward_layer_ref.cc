// Scalar reference twins of the layer backward kernels (backward_layer_ref.h), instantiated for
// float and double.
#include "arle/kernels/ref/backward_layer_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace arle::kernels::ref {

template <typename T>
void RmsNormInvRows(const RmsNormBackwardParams<T>& p, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const T* x = p.x + r * p.n;
    T ss = 0;
    for (int64_t i = 0; i < p.n; ++i) ss += x[i] * x[i];
    p.inv[r] = T(1) / std::sqrt(ss / static_cast<T>(p.n) + p.eps);
  }
}

template <typename T>
void RmsNormBackwardDw(const RmsNormBackwardParams<T>& p, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    T acc = 0;
    for (int64_t r = 0; r < p.n_rows; ++r) acc += p.dy[r * p.n + i] * (p.x[r * p.n + i] * p.inv[r]);
    p.dw[i] += acc;
  }
}

template <typename T>
void RmsNormBackwardDxRows(const RmsNormBackwardParams<T>& p, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const T* x = p.x + r * p.n;
    const T* dy = p.dy + r * p.n;
    T* dx = p.dx + r * p.n;
    const T inv = p.inv[r];
    T c = 0;
    for (int64_t i = 0; i < p.n; ++i) c += (dy[i] * p.w[i]) * (x[i] * inv);
    const T cn = c / static_cast<T>(p.n);
    for (int64_t i = 0; i < p.n; ++i) {
      const T d = inv * (dy[i] * p.w[i] - (x[i] * inv) * cn);
      dx[i] = p.accumulate_dx ? dx[i] + d : d;
    }
  }
}

template <typename T>
void RopeBackwardRows(const RopeBackwardParams<T>& p, int64_t begin, int64_t end) {
  const int64_t half = p.head_dim / 2;
  for (int64_t t = begin; t < end; ++t) {
    const T* c = p.cos + t * half;
    const T* s = p.sin + t * half;
    for (int64_t h = 0; h < p.n_head; ++h) {
      const T* dy = p.dy + (t * p.n_head + h) * p.head_dim;
      T* dx = p.dx + (t * p.n_head + h) * p.head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const T d0 = dy[i], d1 = dy[i + half];
        dx[i] = d0 * c[i] + d1 * s[i];
        dx[i + half] = d1 * c[i] - d0 * s[i];
      }
    }
  }
}

template <typename T>
T StableSigmoid(T g) {
  const T e = std::exp(-std::fabs(g));
  return g >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
void SwiGluBackwardRange(const SwiGluBackwardParams<T>& p, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const T g = p.gate[i], u = p.up[i], d = p.dswiglu[i];
    const T s = StableSigmoid(g);
    const T du = d * (g * s);
    const T dg = ((d * u) * s) * (T(1) + g * (T(1) - s));
    p.dup[i] = du;
    p.dgate[i] = dg;
  }
}

template <typename T>
void CausalAttentionUnits(const CausalAttentionParams<T>& p, int64_t begin, int64_t end) {
  const int64_t hd = p.head_dim, group = p.n_head / p.n_head_kv;
  std::vector<T> score(p.seq_len);
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t s = unit / p.n_head, h = unit % p.n_head, kvh = h / group;
    const int64_t row0 = s * p.seq_len;
    for (int64_t i = 0; i < p.seq_len; ++i) {
      const int64_t qh = (row0 + i) * p.n_head + h;
      const T* q = p.q + qh * hd;
      T mx = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        const T* k = p.k + ((row0 + j) * p.n_head_kv + kvh) * hd;
        T dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
        score[j] = dot * p.scale;
        mx = std::max(mx, score[j]);
      }
      T sum = 0;
      for (int64_t j = 0; j <= i; ++j) sum += (score[j] = std::exp(score[j] - mx));
      T* out = p.out + qh * hd;
      for (int64_t d = 0; d < hd; ++d) {
        T o = 0;
        for (int64_t j = 0; j <= i; ++j) o += score[j] * p.v[((row0 + j) * p.n_head_kv + kvh) * hd + d];
        out[d] = o / sum;
      }
      p.lse[qh] = mx + std::log(sum);
    }
  }
}

template <typename T>
void CausalAttentionBackwardUnits(const CausalAttentionParams<T>& p, int64_t begin, int64_t end) {
  const int64_t hd = p.head_dim, group = p.n_head / p.n_head_kv;
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t s = unit / p.n_head_kv, kvh = unit % p.n_head_kv;
    const int64_t row0 = s * p.seq_len;
    auto kv_at = [&](int64_t j) { return ((row0 + j) * p.n_head_kv + kvh) * hd; };
    for (int64_t j = 0; j < p.seq_len; ++j) {
      std::fill_n(p.dk + kv_at(j), hd, T(0));
      std::fill_n(p.dv + kv_at(j), hd, T(0));
    }
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      for (int64_t i = 0; i < p.seq_len; ++i) {
        const int64_t qh = (row0 + i) * p.n_head + h;
        const T* q = p.q + qh * hd;
        const T* dout = p.dout + qh * hd;
        const T* out = p.out + qh * hd;
        T* dq = p.dq + qh * hd;
        T delta = 0;
        for (int64_t d = 0; d < hd; ++d) delta += dout[d] * out[d];
        std::fill_n(dq, hd, T(0));
        for (int64_t j = 0; j <= i; ++j) {
          const T* k = p.k + kv_at(j);
          const T* v = p.v + kv_at(j);
          T qk = 0, dp = 0;
          for (int64_t d = 0; d < hd; ++d) qk += q[d] * k[d];
          for (int64_t d = 0; d < hd; ++d) dp += dout[d] * v[d];
          const T pj = std::exp(qk * p.scale - p.lse[qh]);
          const T ds = (pj * (dp - delta)) * p.scale;
          T* dk = p.dk + kv_at(j);
          T* dv = p.dv + kv_at(j);
          for (int64_t d = 0; d < hd; ++d) {
            dv[d] += pj * dout[d];
            dk[d] += ds * q[d];
            dq[d] += ds * k[d];
          }
        }
      }
    }
  }
}

#define ARLE_INSTANTIATE(T)                                                                      \
  template void RmsNormInvRows<T>(const RmsNormBackwardParams<T>&, int64_t, int64_t);            \
  template void RmsNormBackwardDw<T>(const RmsNormBackwardParams<T>&, int64_t, int64_t);         \
  template void RmsNormBackwardDxRows<T>(const RmsNormBackwardParams<T>&, int64_t, int64_t);     \
  template void RopeBackwardRows<T>(const RopeBackwardParams<T>&, int64_t, int64_t);             \
  template void SwiGluBackwardRange<T>(const SwiGluBackwardParams<T>&, int64_t, int64_t);        \
  template T StableSigmoid<T>(T);                                                                \
  template void CausalAttentionUnits<T>(const CausalAttentionParams<T>&, int64_t, int64_t);      \
  template void CausalAttentionBackwardUnits<T>(const CausalAttentionParams<T>&, int64_t, int64_t);
ARLE_INSTANTIATE(float)
ARLE_INSTANTIATE(double)
#undef ARLE_INSTANTIATE

}  // namespace arle::kernels::ref
