// Highway kernels of the layer backward (RMSNorm, RoPE, SwiGLU) and of training attention (the
// forward with its log-sum-exp, and the backward). Same contracts as ref/backward_layer_ref.h.
#include <algorithm>
#include <cmath>

#include <cstring>

#include "arle/kernels/cpu/cpu_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/backward_layer_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// After highway.h, per target:
#include "arle/kernels/cpu/attention_group-inl.h"
#include "arle/kernels/cpu/dot-inl.h"
#include "hwy/aligned_allocator.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

void RmsNormInvRows(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const float ss = Dot(p.x + r * p.n, p.x + r * p.n, p.n);
    p.inv[r] = 1.0f / std::sqrt(ss / static_cast<float>(p.n) + p.eps);  // RmsNormRows' formula
  }
}

// Lanes are columns and every lane sums its rows in order with separate multiplies and adds, so a
// column's bits do not depend on which vector, tail or worker computed it (and equal the ref's).
void RmsNormBackwardDw(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = begin;
  for (; i + 4 * lanes <= end; i += 4 * lanes) {
    VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    for (int64_t r = 0; r < p.n_rows; ++r) {
      const float* x = p.x + r * p.n + i;
      const float* dy = p.dy + r * p.n + i;
      const VF inv = hn::Set(df, p.inv[r]);
      a0 = hn::Add(a0, hn::Mul(hn::LoadU(df, dy), hn::Mul(hn::LoadU(df, x), inv)));
      a1 = hn::Add(a1, hn::Mul(hn::LoadU(df, dy + lanes), hn::Mul(hn::LoadU(df, x + lanes), inv)));
      a2 = hn::Add(a2, hn::Mul(hn::LoadU(df, dy + 2 * lanes),
                               hn::Mul(hn::LoadU(df, x + 2 * lanes), inv)));
      a3 = hn::Add(a3, hn::Mul(hn::LoadU(df, dy + 3 * lanes),
                               hn::Mul(hn::LoadU(df, x + 3 * lanes), inv)));
    }
    hn::StoreU(hn::Add(hn::LoadU(df, p.dw + i), a0), df, p.dw + i);
    hn::StoreU(hn::Add(hn::LoadU(df, p.dw + i + lanes), a1), df, p.dw + i + lanes);
    hn::StoreU(hn::Add(hn::LoadU(df, p.dw + i + 2 * lanes), a2), df, p.dw + i + 2 * lanes);
    hn::StoreU(hn::Add(hn::LoadU(df, p.dw + i + 3 * lanes), a3), df, p.dw + i + 3 * lanes);
  }
  for (; i + lanes <= end; i += lanes) {
    VF a = hn::Zero(df);
    for (int64_t r = 0; r < p.n_rows; ++r) {
      a = hn::Add(a, hn::Mul(hn::LoadU(df, p.dy + r * p.n + i),
                             hn::Mul(hn::LoadU(df, p.x + r * p.n + i), hn::Set(df, p.inv[r]))));
    }
    hn::StoreU(hn::Add(hn::LoadU(df, p.dw + i), a), df, p.dw + i);
  }
  for (; i < end; ++i) {
    float a = 0.0f;
    for (int64_t r = 0; r < p.n_rows; ++r) a += p.dy[r * p.n + i] * (p.x[r * p.n + i] * p.inv[r]);
    p.dw[i] += a;
  }
}

void RmsNormBackwardDxRows(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t r = begin; r < end; ++r) {
    const float* x = p.x + r * p.n;
    const float* dy = p.dy + r * p.n;
    const float* w = p.w;
    float* dx = p.dx + r * p.n;
    const float inv = p.inv[r];
    const VF vinv = hn::Set(df, inv);
    VF acc = hn::Zero(df);
    int64_t i = 0;
    for (; i + lanes <= p.n; i += lanes) {
      const VF g = hn::Mul(hn::LoadU(df, dy + i), hn::LoadU(df, w + i));
      acc = hn::MulAdd(g, hn::Mul(hn::LoadU(df, x + i), vinv), acc);
    }
    float c = hn::GetLane(hn::SumOfLanes(df, acc));
    for (; i < p.n; ++i) c += (dy[i] * w[i]) * (x[i] * inv);
    const float cn = c / static_cast<float>(p.n);
    const VF vcn = hn::Set(df, cn);
    // dx may alias dy: element i is read before it is written.
    for (i = 0; i + lanes <= p.n; i += lanes) {
      const VF g = hn::Mul(hn::LoadU(df, dy + i), hn::LoadU(df, w + i));
      VF d = hn::Mul(vinv, hn::Sub(g, hn::Mul(hn::Mul(hn::LoadU(df, x + i), vinv), vcn)));
      if (p.accumulate_dx) d = hn::Add(hn::LoadU(df, dx + i), d);
      hn::StoreU(d, df, dx + i);
    }
    for (; i < p.n; ++i) {
      const float d = inv * (dy[i] * w[i] - (x[i] * inv) * cn);
      dx[i] = p.accumulate_dx ? dx[i] + d : d;
    }
  }
}

void RopeBackwardRows(const RopeBackwardParams<float>& p, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t half = p.head_dim / 2;
  for (int64_t t = begin; t < end; ++t) {
    const float* c = p.cos + t * half;
    const float* s = p.sin + t * half;
    for (int64_t h = 0; h < p.n_head; ++h) {
      const float* dy = p.dy + (t * p.n_head + h) * p.head_dim;
      float* dx = p.dx + (t * p.n_head + h) * p.head_dim;
      int64_t i = 0;
      // Separate multiplies and adds: the same bits as the reference.
      for (; i + lanes <= half; i += lanes) {
        const VF d0 = hn::LoadU(df, dy + i), d1 = hn::LoadU(df, dy + i + half);
        const VF cv = hn::LoadU(df, c + i), sv = hn::LoadU(df, s + i);
        hn::StoreU(hn::Add(hn::Mul(d0, cv), hn::Mul(d1, sv)), df, dx + i);
        hn::StoreU(hn::Sub(hn::Mul(d1, cv), hn::Mul(d0, sv)), df, dx + i + half);
      }
      for (; i < half; ++i) {
        const float d0 = dy[i], d1 = dy[i + half];
        dx[i] = d0 * c[i] + d1 * s[i];
        dx[i + half] = d1 * c[i] - d0 * s[i];
      }
    }
  }
}

// Every element goes through the vector code (the last partial vector through a padded copy), so
// an element's bits do not depend on where the dispatcher split the range.
void SwiGluBackwardRange(const SwiGluBackwardParams<float>& p, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF one = hn::Set(df, 1.0f);
  auto one_vector = [&](const float* gp, const float* up, const float* dp, float* dgp, float* dup) {
    const VF g = hn::LoadU(df, gp), u = hn::LoadU(df, up), d = hn::LoadU(df, dp);
    // sigmoid from exp(-|g|) only, as ref::StableSigmoid: no overflow for any g.
    const VF e = hn::Exp(df, hn::Neg(hn::Abs(g)));
    const VF r = hn::Div(one, hn::Add(one, e));
    const VF s = hn::IfThenElse(hn::Ge(g, hn::Zero(df)), r, hn::Mul(e, r));
    const VF du = hn::Mul(d, hn::Mul(g, s));
    const VF dg = hn::Mul(hn::Mul(hn::Mul(d, u), s), hn::Add(one, hn::Mul(g, hn::Sub(one, s))));
    hn::StoreU(du, df, dup);  // both stores after all loads: outputs may alias inputs
    hn::StoreU(dg, df, dgp);
  };
  int64_t i = begin;
  for (; i + lanes <= end; i += lanes) {
    one_vector(p.gate + i, p.up + i, p.dswiglu + i, p.dgate + i, p.dup + i);
  }
  if (i < end) {
    HWY_ALIGN float buf[5][HWY_MAX_BYTES / sizeof(float)] = {};
    const size_t bytes = static_cast<size_t>(end - i) * sizeof(float);
    std::memcpy(buf[0], p.gate + i, bytes);
    std::memcpy(buf[1], p.up + i, bytes);
    std::memcpy(buf[2], p.dswiglu + i, bytes);
    one_vector(buf[0], buf[1], buf[2], buf[3], buf[4]);
    std::memcpy(p.dgate + i, buf[3], bytes);
    std::memcpy(p.dup + i, buf[4], bytes);
  }
}

// Forward items [begin, end) of [0, n_seq * n_head_kv * seq_len * group), in (sequence, kv head,
// query row, head of the group) order, so runs of items share K/V rows (AttendGroup).
void CausalAttentionItems(const CausalAttentionParams<float>& p, int64_t begin, int64_t end) {
  const int64_t group = p.n_head / p.n_head_kv;
  const int64_t hd = p.head_dim;
  const int64_t kv_row = p.n_head_kv * hd;
  const int64_t per_unit = p.seq_len * group;
  auto row_offset = [kv_row](int64_t j) { return j * kv_row; };
  GroupQuery queries[kMaxGroupQueries];
  int64_t item = begin;
  while (item < end) {
    const int64_t unit = item / per_unit;  // s * n_head_kv + kvh
    const int64_t s = unit / p.n_head_kv, kvh = unit % p.n_head_kv;
    const int64_t unit_end = std::min(end, (unit + 1) * per_unit);
    int64_t m = 0;
    for (; item < unit_end && m < kMaxGroupQueries; ++item, ++m) {
      const int64_t r = item % per_unit;
      const int64_t i = r / group, h = kvh * group + r % group;
      const int64_t qh = (s * p.seq_len + i) * p.n_head + h;
      queries[m] = {p.q + qh * hd, i + 1, p.out + qh * hd, p.lse + qh};
    }
    const int64_t kv0 = s * p.seq_len * kv_row + kvh * hd;
    AttendGroup(queries, m, p.k + kv0, p.v + kv0, hd, p.scale, row_offset);
  }
}

// Keys per block of the backward (a multiple of every target's lane count) and queries per block.
inline constexpr int64_t kKeyBlock = 16;
inline constexpr int64_t kQueryBlock = 4;

// dst[d] (+)= sum over t ascending in [0, n) of coef[t * coef_stride] * rows[t * row_stride + d]
// for d in [0, full), full a multiple of the lane count: one multiply-add chain per element, as
// the reference, with up to four vectors' chains interleaved so their latencies overlap (one
// vector at a time leaves the FMA units waiting on the previous add).
HWY_INLINE void AccumulateRows(float* HWY_RESTRICT dst, const float* HWY_RESTRICT rows,
                               int64_t row_stride, const float* HWY_RESTRICT coef,
                               int64_t coef_stride, int64_t n, int64_t full) {
  const DF df;
  constexpr int64_t kL = static_cast<int64_t>(hn::MaxLanes(DF()));
  int64_t d = 0;
  for (; d + 4 * kL <= full; d += 4 * kL) {
    VF a0 = hn::LoadU(df, dst + d), a1 = hn::LoadU(df, dst + d + kL);
    VF a2 = hn::LoadU(df, dst + d + 2 * kL), a3 = hn::LoadU(df, dst + d + 3 * kL);
    for (int64_t t = 0; t < n; ++t) {
      const VF c = hn::Set(df, coef[t * coef_stride]);
      const float* row = rows + t * row_stride + d;
      a0 = hn::MulAdd(c, hn::LoadU(df, row), a0);
      a1 = hn::MulAdd(c, hn::LoadU(df, row + kL), a1);
      a2 = hn::MulAdd(c, hn::LoadU(df, row + 2 * kL), a2);
      a3 = hn::MulAdd(c, hn::LoadU(df, row + 3 * kL), a3);
    }
    hn::StoreU(a0, df, dst + d);
    hn::StoreU(a1, df, dst + d + kL);
    hn::StoreU(a2, df, dst + d + 2 * kL);
    hn::StoreU(a3, df, dst + d + 3 * kL);
  }
  for (; d + 2 * kL <= full; d += 2 * kL) {
    VF a0 = hn::LoadU(df, dst + d), a1 = hn::LoadU(df, dst + d + kL);
    for (int64_t t = 0; t < n; ++t) {
      const VF c = hn::Set(df, coef[t * coef_stride]);
      const float* row = rows + t * row_stride + d;
      a0 = hn::MulAdd(c, hn::LoadU(df, row), a0);
      a1 = hn::MulAdd(c, hn::LoadU(df, row + kL), a1);
    }
    hn::StoreU(a0, df, dst + d);
    hn::StoreU(a1, df, dst + d + kL);
  }
  for (; d < full; d += kL) {
    VF a = hn::LoadU(df, dst + d);
    for (int64_t t = 0; t < n; ++t) {
      a = hn::MulAdd(hn::Set(df, coef[t * coef_stride]), hn::LoadU(df, rows + t * row_stride + d),
                     a);
    }
    hn::StoreU(a, df, dst + d);
  }
}

// One (sequence, kv head) unit per item: every dq row of the group's heads and every dk/dv row of
// the kv head are written by this unit alone. Key blocks outer (their K and V rows transposed once
// into lanes-over-keys tiles, so scores need no horizontal sums), then the group's heads, then
// blocks of kQueryBlock queries that see the key block. Every accumulator still sums in the
// reference's order: dq_i over keys ascending; dk_j and dv_j over (head, query) ascending, the
// masked pairs (j > i) adding exactly zero (p = exp(-inf) = 0).
void CausalAttentionBackwardUnits(const CausalAttentionParams<float>& p, int64_t begin,
                                  int64_t end) {
  const DF df;
  constexpr int64_t kLanes = static_cast<int64_t>(hn::MaxLanes(DF()));
  constexpr int64_t kVecs = kKeyBlock / kLanes;  // vectors per key block
  const int64_t group = p.n_head / p.n_head_kv;
  const int64_t hd = p.head_dim;
  const int64_t kv_row = p.n_head_kv * hd;
  const int64_t full = hd - hd % kLanes;
  auto tiles = hwy::AllocateAligned<float>(static_cast<size_t>(2 * hd * kKeyBlock));
  float* kt = tiles.get();             // [hd][kKeyBlock]: kt[d * kKeyBlock + jj] = k_{j0+jj}[d]
  float* vt = kt + hd * kKeyBlock;
  auto delta_buf = hwy::AllocateAligned<float>(static_cast<size_t>(group * p.seq_len));
  HWY_ALIGN float pr[kQueryBlock][kKeyBlock], ds[kQueryBlock][kKeyBlock];
  HWY_ALIGN float iota[kKeyBlock];
  for (int64_t jj = 0; jj < kKeyBlock; ++jj) iota[jj] = static_cast<float>(jj);
  const VF scale = hn::Set(df, p.scale), neg_inf = hn::Set(df, -INFINITY);
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t s = unit / p.n_head_kv, kvh = unit % p.n_head_kv;
    const int64_t kv0 = s * p.seq_len * kv_row + kvh * hd;
    const float* k = p.k + kv0;
    const float* v = p.v + kv0;
    float* dk = p.dk + kv0;
    float* dv = p.dv + kv0;
    auto qrow = [&](int64_t h, int64_t i) { return ((s * p.seq_len + i) * p.n_head + h) * hd; };
    for (int64_t j = 0; j < p.seq_len; ++j) {
      std::fill_n(dk + j * kv_row, hd, 0.0f);
      std::fill_n(dv + j * kv_row, hd, 0.0f);
      for (int64_t g = 0; g < group; ++g) {
        const int64_t h = kvh * group + g;
        std::fill_n(p.dq + qrow(h, j), hd, 0.0f);
        delta_buf[g * p.seq_len + j] = Dot(p.dout + qrow(h, j), p.out + qrow(h, j), hd);
      }
    }
    for (int64_t j0 = 0; j0 < p.seq_len; j0 += kKeyBlock) {
      const int64_t nk = std::min(kKeyBlock, p.seq_len - j0);
      for (int64_t d = 0; d < hd; ++d) {
        for (int64_t jj = 0; jj < kKeyBlock; ++jj) {
          kt[d * kKeyBlock + jj] = jj < nk ? k[(j0 + jj) * kv_row + d] : 0.0f;
          vt[d * kKeyBlock + jj] = jj < nk ? v[(j0 + jj) * kv_row + d] : 0.0f;
        }
      }
      for (int64_t g = 0; g < group; ++g) {
        const int64_t h = kvh * group + g;
        for (int64_t i0 = j0; i0 < p.seq_len; i0 += kQueryBlock) {
          const int64_t nq = std::min(kQueryBlock, p.seq_len - i0);
          const float* q[kQueryBlock];
          const float* dout[kQueryBlock];
          for (int64_t r = 0; r < kQueryBlock; ++r) {
            const int64_t i = i0 + std::min(r, nq - 1);  // a short block repeats its last query
            q[r] = p.q + qrow(h, i);
            dout[r] = p.dout + qrow(h, i);
          }
          VF sc[kQueryBlock][kVecs], dp[kQueryBlock][kVecs];
          for (int64_t r = 0; r < kQueryBlock; ++r) {
            for (int64_t c = 0; c < kVecs; ++c) sc[r][c] = dp[r][c] = hn::Zero(df);
          }
          for (int64_t d = 0; d < hd; ++d) {
            for (int64_t c = 0; c < kVecs; ++c) {
              const VF kv = hn::Load(df, kt + d * kKeyBlock + c * kLanes);
              const VF vv = hn::Load(df, vt + d * kKeyBlock + c * kLanes);
              for (int64_t r = 0; r < kQueryBlock; ++r) {
                sc[r][c] = hn::MulAdd(hn::Set(df, q[r][d]), kv, sc[r][c]);
                dp[r][c] = hn::MulAdd(hn::Set(df, dout[r][d]), vv, dp[r][c]);
              }
            }
          }
          for (int64_t r = 0; r < kQueryBlock; ++r) {
            const int64_t i = i0 + r;
            const int64_t qh = (s * p.seq_len + std::min(i, i0 + nq - 1)) * p.n_head + h;
            const VF lse = hn::Set(df, p.lse[qh]);
            const VF delta = hn::Set(df, delta_buf[g * p.seq_len + std::min(i, i0 + nq - 1)]);
            for (int64_t c = 0; c < kVecs; ++c) {
              // Keys past the query (and the repeated rows of a short block) get p = 0.
              const auto masked = hn::Gt(hn::Add(hn::Load(df, iota + c * kLanes),
                                                 hn::Set(df, static_cast<float>(j0))),
                                         hn::Set(df, static_cast<float>(r < nq ? i : -1)));
              const VF score = hn::IfThenElse(masked, neg_inf, hn::Mul(sc[r][c], scale));
              const VF pv = hn::Exp(df, hn::Sub(score, lse));
              hn::Store(pv, df, pr[r] + c * kLanes);
              hn::Store(hn::Mul(hn::Mul(pv, hn::Sub(dp[r][c], delta)), scale), df,
                        ds[r] + c * kLanes);
            }
          }
          // dq_i += sum over the block's keys (ascending) of ds k_j.
          for (int64_t r = 0; r < nq; ++r) {
            float* dq = p.dq + qrow(h, i0 + r);
            const int64_t jn = std::min(nk, i0 + r - j0 + 1);
            AccumulateRows(dq, k + j0 * kv_row, kv_row, ds[r], 1, jn, full);
            for (int64_t d = full; d < hd; ++d) {
              for (int64_t jj = 0; jj < jn; ++jj) dq[d] = std::fma(ds[r][jj], k[(j0 + jj) * kv_row + d], dq[d]);
            }
          }
          // dk_j += ds q_i and dv_j += p dout_i over the block's queries (ascending).
          for (int64_t jj = 0; jj < nk; ++jj) {
            float* dkj = dk + (j0 + jj) * kv_row;
            float* dvj = dv + (j0 + jj) * kv_row;
            // The block's queries are consecutive rows, n_head * hd apart (q[r] for r < nq).
            const int64_t q_stride = p.n_head * hd;
            AccumulateRows(dkj, q[0], q_stride, &ds[0][jj], kKeyBlock, nq, full);
            AccumulateRows(dvj, dout[0], q_stride, &pr[0][jj], kKeyBlock, nq, full);
            for (int64_t d = full; d < hd; ++d) {
              for (int64_t r = 0; r < nq; ++r) {
                dkj[d] = std::fma(ds[r][jj], q[r][d], dkj[d]);
                dvj[d] = std::fma(pr[r][jj], dout[r][d], dvj[d]);
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(RmsNormInvRows);
HWY_EXPORT(RmsNormBackwardDw);
HWY_EXPORT(RmsNormBackwardDxRows);
HWY_EXPORT(RopeBackwardRows);
HWY_EXPORT(SwiGluBackwardRange);
HWY_EXPORT(CausalAttentionItems);
HWY_EXPORT(CausalAttentionBackwardUnits);

void RmsNormInvRows(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(RmsNormInvRows)(p, begin, end);
}
void RmsNormBackwardDw(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(RmsNormBackwardDw)(p, begin, end);
}
void RmsNormBackwardDxRows(const RmsNormBackwardParams<float>& p, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(RmsNormBackwardDxRows)(p, begin, end);
}
void RopeBackwardRows(const RopeBackwardParams<float>& p, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(RopeBackwardRows)(p, begin, end);
}
void SwiGluBackwardRange(const SwiGluBackwardParams<float>& p, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(SwiGluBackwardRange)(p, begin, end);
}
void CausalAttentionItems(const CausalAttentionParams<float>& p, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(CausalAttentionItems)(p, begin, end);
}
void CausalAttentionBackwardUnits(const CausalAttentionParams<float>& p, int64_t begin,
                                  int64_t end) {
  HWY_DYNAMIC_DISPATCH(CausalAttentionBackwardUnits)(p, begin, end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
