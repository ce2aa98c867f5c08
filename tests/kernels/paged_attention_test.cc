// Paged KV kernels: PagedAttention against contiguous Attention (bit-identical per backend), cpu vs
// ref and vs double precision, invariance to block placement / batch / threads on every SIMD
// target, WritePagedKv rounding, CopyPagedKvRows, and argument checks.
#include "arle/kernels/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "arle/kernels/attention.h"
#include "kernel_test_util.h"

namespace arle::kernels {
namespace {

using testing::Ctx;
using testing::ForEachTarget;
using testing::Gamma;
using testing::kU;
using testing::MatMul1;
using testing::Rescales;
using testing::SerialCtx;
using testing::Tmp;

// One sequence of a step: its KV holds rows 0 .. len-1, and the step has query tokens at
// positions first_pos .. len-1 (a prefill chunk, or one decode token when first_pos == len-1).
struct SeqSpec {
  int64_t len;
  int64_t first_pos;
};

struct PagedCase {
  core::DType dtype;
  int64_t n_head, n_head_kv, head_dim, block_size;
  std::vector<SeqSpec> seqs;
};

std::vector<PagedCase> Cases() {
  // Prefill chunks (from row 0 or after a cached prefix) mixed with decode tokens; lengths end
  // mid-block, on a block boundary and just past one. head_dim 64 (no tail), 40 (a tail on
  // AVX-512) and 37 (a tail on every target).
  const std::vector<SeqSpec> seqs = {{37, 20}, {5, 4}, {64, 63}, {1, 0}, {20, 0}, {17, 16}};
  std::vector<PagedCase> cases;
  for (const core::DType dtype : {core::DType::kF32, core::DType::kBF16, core::DType::kF16}) {
    for (const int64_t head_dim : {64, 40, 37}) {
      cases.push_back({dtype, 8, 2, head_dim, 16, seqs});
    }
    cases.push_back({dtype, 4, 4, 16, 5, {{12, 0}, {3, 2}, {26, 20}}});  // MHA, odd block size
  }
  return cases;
}

uint16_t Bits16(float f, core::DType dtype) {
  return dtype == core::DType::kBF16 ? core::F32ToBF16(f) : core::F32ToF16(f);
}
float Widen16(uint16_t b, core::DType dtype) {
  return dtype == core::DType::kBF16 ? core::BF16ToF32(b) : core::F16ToF32(b);
}

// Element i of a cache side as f32, widened with core/half.h.
float CacheAt(const void* side, core::DType dtype, int64_t i) {
  if (dtype == core::DType::kF32) return static_cast<const float*>(side)[i];
  return Widen16(static_cast<const uint16_t*>(side)[i], dtype);
}

// A step's query side: tokens of all sequences, in shuffled order.
struct Batch {
  std::vector<int64_t> seq_of;     // [n_tok]
  std::vector<int32_t> positions;  // [n_tok]
  std::vector<float> q;            // [n_tok, n_head, head_dim]
};

// A paged cache holding the same rows for every sequence, placed in blocks chosen by a seed.
struct Cache {
  core::Buffer k, v;
  PagedKvLayer layer;
  std::vector<std::vector<int32_t>> tables;  // per sequence

  std::vector<const int32_t*> TablesOf(const Batch& b) const {
    std::vector<const int32_t*> out;
    for (const int64_t s : b.seq_of) out.push_back(tables[s].data());
    return out;
  }
  // Row j of sequence s (all KV heads) widened to f32, from the stored bits.
  void ReadRow(const void* side, int64_t s, int64_t j, float* dst) const {
    const int64_t hd = layer.head_dim;
    const int64_t block = tables[s][j / layer.block_size];
    for (int64_t kvh = 0; kvh < layer.n_head_kv; ++kvh) {
      const int64_t at = PagedKvElement(block, j % layer.block_size, kvh, layer.n_head_kv,
                                        layer.block_size, hd);
      for (int64_t i = 0; i < hd; ++i) dst[kvh * hd + i] = CacheAt(side, layer.dtype, at + i);
    }
  }
};

template <typename T>
void Shuffle(std::vector<T>& v, core::Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.NextU64() % i]);
}

// Fills every element of a side with NaN so a row read by mistake poisons the output.
void FillNaN(core::Buffer& buf, core::DType dtype, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == core::DType::kF32) {
      buf.as<float>()[i] = NAN;
    } else {
      buf.as<uint16_t>()[i] = Bits16(NAN, dtype);
    }
  }
}

// Writes k_src/v_src[s] ([len, n_head_kv, head_dim] f32) into blocks drawn from a shuffled pool of
// n_blocks, in two WritePagedKv calls per sequence (as a prefill then a decode would).
Cache MakeCache(const PagedCase& c, const std::vector<std::vector<float>>& k_src,
                const std::vector<std::vector<float>>& v_src, int64_t n_blocks, uint64_t seed) {
  Cache cache;
  const int64_t row = c.n_head_kv * c.head_dim;
  const int64_t n = n_blocks * c.block_size * row;
  cache.k = core::Buffer(n * core::ElementSize(c.dtype));
  cache.v = core::Buffer(n * core::ElementSize(c.dtype));
  FillNaN(cache.k, c.dtype, n);
  FillNaN(cache.v, c.dtype, n);
  cache.layer = {cache.k.data(), cache.v.data(), c.dtype,   n_blocks,
                 c.block_size,   c.n_head_kv,    c.head_dim};
  std::vector<int32_t> free(n_blocks);
  std::iota(free.begin(), free.end(), 0);
  core::Rng rng(seed);
  Shuffle(free, rng);
  size_t next = 0;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    const int64_t len = c.seqs[s].len;
    std::vector<int32_t>& table = cache.tables.emplace_back();
    for (int64_t b = 0; b < (len + c.block_size - 1) / c.block_size; ++b) {
      table.push_back(free.at(next++));
    }
    std::vector<int64_t> slots;
    for (int64_t j = 0; j < len; ++j) {
      slots.push_back(table[j / c.block_size] * c.block_size + j % c.block_size);
    }
    const int64_t split = len / 2;
    const std::pair<int64_t, int64_t> parts[] = {{0, split}, {split, len}};
    for (const auto& [begin, end] : parts) {
      float* kp = const_cast<float*>(k_src[s].data()) + begin * row;
      float* vp = const_cast<float*>(v_src[s].data()) + begin * row;
      const core::Tensor kt(kp, core::DType::kF32, {end - begin, c.n_head_kv, c.head_dim});
      const core::Tensor vt(vp, core::DType::kF32, {end - begin, c.n_head_kv, c.head_dim});
      WritePagedKv(SerialCtx(), {.k_new = &kt,
                                 .v_new = &vt,
                                 .slots = std::span(slots).subspan(begin, end - begin),
                                 .layer = &cache.layer});
    }
  }
  return cache;
}

// Everything one case needs: source rows, the batch, and a cache with a first placement.
struct Fixture {
  PagedCase c;
  std::vector<std::vector<float>> k_src, v_src;
  Batch batch;
  float scale = 0;

  explicit Fixture(const PagedCase& pc, uint64_t seed) : c(pc) {
    core::Rng rng(seed);
    const int64_t row = c.n_head_kv * c.head_dim;
    for (const SeqSpec& s : c.seqs) {
      std::vector<float> k, v;
      testing::RandomBuffer(rng, core::DType::kF32, s.len * row, 1.0, &k);
      testing::RandomBuffer(rng, core::DType::kF32, s.len * row, 1.0, &v);
      k_src.push_back(std::move(k));
      v_src.push_back(std::move(v));
    }
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      for (int64_t p = c.seqs[s].first_pos; p < c.seqs[s].len; ++p) {
        batch.seq_of.push_back(static_cast<int64_t>(s));
        batch.positions.push_back(static_cast<int32_t>(p));
      }
    }
    // Shuffle tokens so a sequence's tokens are neither adjacent nor in order.
    std::vector<size_t> order(batch.seq_of.size());
    std::iota(order.begin(), order.end(), 0);
    Shuffle(order, rng);
    Batch shuffled;
    for (const size_t i : order) {
      shuffled.seq_of.push_back(batch.seq_of[i]);
      shuffled.positions.push_back(batch.positions[i]);
    }
    batch = std::move(shuffled);
    testing::RandomBuffer(rng, core::DType::kF32, n_tok() * c.n_head * c.head_dim, 1.0, &batch.q);
    scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  }
  int64_t n_tok() const { return static_cast<int64_t>(batch.seq_of.size()); }
  int64_t n_out() const { return n_tok() * c.n_head * c.head_dim; }
  int64_t total_blocks() const {
    int64_t n = 0;
    for (const SeqSpec& s : c.seqs) n += (s.len + c.block_size - 1) / c.block_size;
    return n;
  }

  // PagedAttention of the whole batch.
  std::vector<float> RunPaged(const Cache& cache, core::ThreadPool& pool, Backend backend) const {
    std::vector<float> out(n_out(), -1.0f);
    const core::Tensor q(const_cast<float*>(batch.q.data()), core::DType::kF32,
                         {n_tok(), c.n_head, c.head_dim});
    core::Tensor o(out.data(), core::DType::kF32, {n_tok(), c.n_head, c.head_dim});
    const std::vector<const int32_t*> tables = cache.TablesOf(batch);
    PagedAttention(Ctx(pool, backend), {.q = &q,
                                        .layer = &cache.layer,
                                        .block_tables = tables,
                                        .positions = batch.positions,
                                        .scale = scale,
                                        .out = &o});
    return out;
  }

  // Contiguous Attention, one call per sequence over its rows read back from the cache, the
  // outputs scattered to batch order. Also returns the widened rows per sequence.
  std::vector<float> RunContiguous(const Cache& cache, core::ThreadPool& pool, Backend backend,
                                   std::vector<std::vector<float>>* k_wide,
                                   std::vector<std::vector<float>>* v_wide) const {
    const int64_t row = c.n_head_kv * c.head_dim, qrow = c.n_head * c.head_dim;
    std::vector<float> out(n_out(), -1.0f);
    k_wide->assign(c.seqs.size(), {});
    v_wide->assign(c.seqs.size(), {});
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      const int64_t len = c.seqs[s].len;
      std::vector<float>& kc = (*k_wide)[s];
      std::vector<float>& vc = (*v_wide)[s];
      kc.resize(len * row);
      vc.resize(len * row);
      for (int64_t j = 0; j < len; ++j) {
        cache.ReadRow(cache.layer.k, s, j, &kc[j * row]);
        cache.ReadRow(cache.layer.v, s, j, &vc[j * row]);
      }
      std::vector<int64_t> toks;
      std::vector<int32_t> pos;
      std::vector<float> qs;
      for (int64_t t = 0; t < n_tok(); ++t) {
        if (batch.seq_of[t] != static_cast<int64_t>(s)) continue;
        toks.push_back(t);
        pos.push_back(batch.positions[t]);
        qs.insert(qs.end(), batch.q.begin() + t * qrow, batch.q.begin() + (t + 1) * qrow);
      }
      const int64_t n = static_cast<int64_t>(toks.size());
      std::vector<float> os(n * qrow);
      const core::Tensor qt(qs.data(), core::DType::kF32, {n, c.n_head, c.head_dim});
      const core::Tensor kt(kc.data(), core::DType::kF32, {len, c.n_head_kv, c.head_dim});
      const core::Tensor vt(vc.data(), core::DType::kF32, {len, c.n_head_kv, c.head_dim});
      core::Tensor ot(os.data(), core::DType::kF32, {n, c.n_head, c.head_dim});
      Attention(Ctx(pool, backend),
                {.q = &qt, .k = &kt, .v = &vt, .positions = pos, .scale = scale, .out = &ot});
      for (int64_t i = 0; i < n; ++i) {
        std::copy(os.begin() + i * qrow, os.begin() + (i + 1) * qrow, out.begin() + toks[i] * qrow);
      }
    }
    return out;
  }
};

std::string CaseName(const PagedCase& c) {
  return std::string(core::DTypeName(c.dtype)) + " n_head " + std::to_string(c.n_head) + "/" +
         std::to_string(c.n_head_kv) + " head_dim " + std::to_string(c.head_dim) + " block " +
         std::to_string(c.block_size);
}

void ExpectBitIdentical(const std::vector<float>& a, const std::vector<float>& b,
                        const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_FALSE(std::isnan(a[i])) << what << " element " << i;
  }
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << what;
}

// (1), (2) and (4): per backend, paged == contiguous over the widened stored rows, bit for bit;
// and the paged result does not depend on block placement, pool size or the rest of the batch.
TEST(PagedAttentionTest, BitIdenticalToContiguousAttentionAndInvariant) {
  core::ThreadPool pool2(2), pool1(1), pool3(3);
  uint64_t seed = 100;
  for (const PagedCase& c : Cases()) {
    SCOPED_TRACE(CaseName(c));
    const Fixture f(c, ++seed);
    const Cache cache = MakeCache(c, f.k_src, f.v_src, f.total_blocks() + 7, seed * 31);
    // A second placement in a bigger pool: same rows, other blocks.
    const Cache moved = MakeCache(c, f.k_src, f.v_src, f.total_blocks() * 2 + 3, seed * 57);
    ASSERT_NE(cache.tables, moved.tables);
    std::vector<std::vector<float>> kw, vw;

    const std::vector<float> ref = f.RunPaged(cache, pool2, Backend::kRef);
    ExpectBitIdentical(ref, f.RunContiguous(cache, pool2, Backend::kRef, &kw, &vw), "ref contig");
    ExpectBitIdentical(ref, f.RunPaged(moved, pool1, Backend::kRef), "ref moved, 1 thread");

    ForEachTarget([&](const char*) {
      const std::vector<float> cpu = f.RunPaged(cache, pool2, Backend::kCpu);
      ExpectBitIdentical(cpu, f.RunContiguous(cache, pool2, Backend::kCpu, &kw, &vw), "cpu contig");
      ExpectBitIdentical(cpu, f.RunPaged(moved, pool2, Backend::kCpu), "cpu moved");
      ExpectBitIdentical(cpu, f.RunPaged(cache, pool1, Backend::kCpu), "cpu 1 thread");
      ExpectBitIdentical(cpu, f.RunPaged(moved, pool3, Backend::kCpu), "cpu moved, 3 threads");
      // Each token alone gives the same bits as in the batch.
      const int64_t qrow = c.n_head * c.head_dim;
      for (int64_t t = 0; t < f.n_tok(); ++t) {
        std::vector<float> o1(qrow);
        const core::Tensor q1(const_cast<float*>(f.batch.q.data()) + t * qrow, core::DType::kF32,
                              {1, c.n_head, c.head_dim});
        core::Tensor ot(o1.data(), core::DType::kF32, {1, c.n_head, c.head_dim});
        const int32_t* table = moved.tables[f.batch.seq_of[t]].data();
        PagedAttention(Ctx(pool1, Backend::kCpu),
                       {.q = &q1,
                        .layer = &moved.layer,
                        .block_tables = std::span(&table, 1),
                        .positions = std::span(f.batch.positions).subspan(t, 1),
                        .scale = f.scale,
                        .out = &ot});
        ASSERT_EQ(0, std::memcmp(o1.data(), cpu.data() + t * qrow, qrow * sizeof(float)))
            << "token " << t;
      }
    });
  }
}

// (3): ref and cpu against double-precision attention over the widened rows. The storage
// rounding is not the kernel's error: both see the same widened values, so the f32 attention
// error model of kernels_test.cc applies unchanged (per kernel |out - exact| <= (2D + (n + 4 +
// 2 Rescales(n)) u + gamma_n) * sum_j p_j |v_j|, D = max_j gamma_hd * scale * sum_d |q_d k_jd|;
// 2x between kernels).
TEST(PagedAttentionTest, CpuAndReferenceMatchExactOnEveryTarget) {
  core::ThreadPool pool(2);
  uint64_t seed = 500;
  for (const PagedCase& c : Cases()) {
    SCOPED_TRACE(CaseName(c));
    const Fixture f(c, ++seed);
    const Cache cache = MakeCache(c, f.k_src, f.v_src, f.total_blocks() + 2, seed);
    std::vector<std::vector<float>> kw, vw;
    (void)f.RunContiguous(cache, pool, Backend::kRef, &kw, &vw);
    const std::vector<float> ref = f.RunPaged(cache, pool, Backend::kRef);
    const int64_t hd = c.head_dim, group = c.n_head / c.n_head_kv;
    std::vector<double> exact(f.n_out()), bound(f.n_out());
    for (int64_t t = 0; t < f.n_tok(); ++t) {
      const std::vector<float>& k = kw[f.batch.seq_of[t]];
      const std::vector<float>& v = vw[f.batch.seq_of[t]];
      const int64_t n_seen = f.batch.positions[t] + 1;
      for (int64_t h = 0; h < c.n_head; ++h) {
        const float* q = &f.batch.q[(t * c.n_head + h) * hd];
        const int64_t kvh = h / group;
        std::vector<double> s(n_seen);
        double mx = -INFINITY, dmax = 0;
        for (int64_t j = 0; j < n_seen; ++j) {
          double dot = 0, abs_dot = 0;
          for (int64_t d = 0; d < hd; ++d) {
            const double kd = k[(j * c.n_head_kv + kvh) * hd + d];
            dot += q[d] * kd;
            abs_dot += std::fabs(q[d] * kd);
          }
          s[j] = dot * f.scale;
          mx = std::max(mx, s[j]);
          dmax = std::max(dmax, Gamma(hd) * f.scale * abs_dot);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        double wabs = 0;
        std::vector<double> o(hd, 0.0), oabs(hd, 0.0);
        for (int64_t j = 0; j < n_seen; ++j) {
          for (int64_t d = 0; d < hd; ++d) {
            const double vd = v[(j * c.n_head_kv + kvh) * hd + d];
            o[d] += s[j] / sum * vd;
            oabs[d] += s[j] / sum * std::fabs(vd);
          }
        }
        for (const double a : oabs) wabs = std::max(wabs, a);
        for (int64_t d = 0; d < hd; ++d) {
          const int64_t i = (t * c.n_head + h) * hd + d;
          exact[i] = o[d];
          bound[i] = (2 * dmax + (n_seen + 4 + 2 * Rescales(n_seen)) * kU + Gamma(n_seen)) * wabs + 1e-30;
          ASSERT_LE(std::fabs(ref[i] - exact[i]), bound[i]) << "ref " << i;
        }
      }
    }
    ForEachTarget([&](const char*) {
      const std::vector<float> cpu = f.RunPaged(cache, pool, Backend::kCpu);
      for (int64_t i = 0; i < f.n_out(); ++i) {
        ASSERT_LE(std::fabs(cpu[i] - exact[i]), bound[i]) << "cpu " << i;
        ASSERT_LE(std::fabs(cpu[i] - ref[i]), 2 * bound[i]) << "cpu vs ref " << i;
      }
    });
  }
}

// 16-bit caches with f16 subnormals and values that round up / overflow: widening on load in the
// SIMD kernel must equal core/half.h's widening (checked by bit-identity with contiguous f32).
TEST(PagedAttentionTest, F16SubnormalsAndExtremesMatchContiguous) {
  core::ThreadPool pool(2);
  PagedCase c{core::DType::kF16, 2, 1, 37, 16, {{40, 0}, {9, 8}}};
  Fixture f(c, 77);
  core::Rng rng(78);
  for (std::vector<float>* side : {&f.k_src[0], &f.v_src[0], &f.k_src[1], &f.v_src[1]}) {
    for (float& x : *side) {
      const uint64_t r = rng.NextU64() % 4;
      if (r == 0) x *= 3e-6f;  // f16 subnormal
      if (r == 1) x *= 1e-8f;  // rounds to zero or the smallest subnormal
    }
  }
  const Cache cache = MakeCache(c, f.k_src, f.v_src, 6, 79);
  std::vector<std::vector<float>> kw, vw;
  const std::vector<float> ref = f.RunPaged(cache, pool, Backend::kRef);
  ExpectBitIdentical(ref, f.RunContiguous(cache, pool, Backend::kRef, &kw, &vw), "ref");
  ForEachTarget([&](const char*) {
    ExpectBitIdentical(f.RunPaged(cache, pool, Backend::kCpu),
                       f.RunContiguous(cache, pool, Backend::kCpu, &kw, &vw), "cpu");
  });
}

// (5): stored bits are exactly core/half.h's rounding of the input (f32: the input bits); slots
// not written keep their contents.
TEST(WritePagedKvTest, RoundsLikeCoreHalfAndTouchesOnlyItsSlots) {
  core::Rng rng(4);
  const int64_t n_blocks = 3, bs = 4, n_head_kv = 2, hd = 5, row = n_head_kv * hd;
  const std::vector<int64_t> slots = {7, 0, 11, 5};
  const int64_t n_tok = static_cast<int64_t>(slots.size());
  // Random values plus ties, tiny, huge, infinite and NaN inputs.
  std::vector<float> k(n_tok * row), v(n_tok * row);
  const std::vector<float> special = {1.00390625f,     // bf16 tie, rounds to even (down)
                                      1.01171875f,     // bf16 tie, rounds to even (up)
                                      1.00048828125f,  // f16 tie
                                      1e-7f,          -3e-5f, 65520.0f, 1e30f,
                                      -INFINITY,      NAN,    -0.0f};
  for (int64_t i = 0; i < n_tok * row; ++i) {
    k[i] = static_cast<float>(rng.Normal() * 10);
    v[i] = i < static_cast<int64_t>(special.size()) ? special[i] : static_cast<float>(rng.Normal());
  }
  for (const core::DType dtype : {core::DType::kF32, core::DType::kBF16, core::DType::kF16}) {
    SCOPED_TRACE(core::DTypeName(dtype));
    const int64_t esize = core::ElementSize(dtype);
    const int64_t n_bytes = n_blocks * bs * row * esize;
    core::Buffer kb(n_bytes), vb(n_bytes);
    for (int64_t i = 0; i < n_bytes; ++i) {
      kb.as<uint8_t>()[i] = 0xA5;
      vb.as<uint8_t>()[i] = 0x5A;
    }
    const PagedKvLayer layer{kb.data(), vb.data(), dtype, n_blocks, bs, n_head_kv, hd};
    const core::Tensor kt(k.data(), core::DType::kF32, {n_tok, n_head_kv, hd});
    const core::Tensor vt(v.data(), core::DType::kF32, {n_tok, n_head_kv, hd});
    WritePagedKv(SerialCtx(), {.k_new = &kt, .v_new = &vt, .slots = slots, .layer = &layer});
    // Element-wise: which elements of a side were written (layout from PagedKvElement).
    std::vector<bool> written(n_blocks * bs * row, false);
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t i = 0; i < row; ++i) {
        const int64_t dst =
            PagedKvElement(slots[t] / bs, slots[t] % bs, i / hd, n_head_kv, bs, hd) + i % hd;
        written[dst] = true;
        for (const auto& [src, side] : {std::pair{&k, &kb}, std::pair{&v, &vb}}) {
          const float x = (*src)[t * row + i];
          if (dtype == core::DType::kF32) {
            ASSERT_EQ(std::bit_cast<uint32_t>(x), side->as<uint32_t>()[dst]) << t << " " << i;
          } else {
            ASSERT_EQ(Bits16(x, dtype), side->as<uint16_t>()[dst]) << t << " " << i << " " << x;
          }
        }
      }
    }
    for (int64_t e = 0; e < n_blocks * bs * row; ++e) {
      if (written[e]) continue;
      for (int64_t b = e * esize; b < (e + 1) * esize; ++b) {
        ASSERT_EQ(kb.as<uint8_t>()[b], 0xA5) << "element " << e;
        ASSERT_EQ(vb.as<uint8_t>()[b], 0x5A) << "element " << e;
      }
    }
  }
  // The known roundings, spelled out: bf16 ties go to even.
  EXPECT_EQ(core::F32ToBF16(1.00390625f), 0x3f80);
  EXPECT_EQ(core::F32ToBF16(1.01171875f), 0x3f82);
}

// (6): exactly the first n_rows rows of block src land in block dst, for K and V; every other
// byte is unchanged.
TEST(CopyPagedKvRowsTest, CopiesExactlyNRowsOfKAndV) {
  core::Rng rng(6);
  const int64_t n_blocks = 4, bs = 16, n_head_kv = 2, hd = 3, row = n_head_kv * hd;
  for (const core::DType dtype : {core::DType::kF32, core::DType::kBF16, core::DType::kF16}) {
    for (const int64_t n_rows : {0, 1, 7, 16}) {
      SCOPED_TRACE(::testing::Message() << core::DTypeName(dtype) << " n_rows " << n_rows);
      const int64_t block_bytes = bs * row * core::ElementSize(dtype);
      const int64_t n_bytes = n_blocks * block_bytes;
      core::Buffer kb(n_bytes), vb(n_bytes);
      for (int64_t i = 0; i < n_bytes; ++i) {
        kb.as<uint8_t>()[i] = static_cast<uint8_t>(rng.NextU64());
        vb.as<uint8_t>()[i] = static_cast<uint8_t>(rng.NextU64());
      }
      const std::vector<uint8_t> k0(kb.as<uint8_t>(), kb.as<uint8_t>() + n_bytes);
      const std::vector<uint8_t> v0(vb.as<uint8_t>(), vb.as<uint8_t>() + n_bytes);
      const PagedKvLayer layer{kb.data(), vb.data(), dtype, n_blocks, bs, n_head_kv, hd};
      const int64_t src = 3, dst = 1;
      CopyPagedKvRows(SerialCtx(), {.layer = &layer, .src = src, .dst = dst, .n_rows = n_rows});
      // Byte i belongs to element e = i / esize at (block, kvh, offset, d) of
      // [n_blocks, n_head_kv, bs, hd]; it is copied when block == dst and offset < n_rows, from
      // the same place in block src.
      const int64_t esize = core::ElementSize(dtype);
      const int64_t block_elems = n_head_kv * bs * hd;
      for (const auto& [buf, before] : {std::pair{&kb, &k0}, std::pair{&vb, &v0}}) {
        for (int64_t i = 0; i < n_bytes; ++i) {
          const int64_t e = i / esize;
          const int64_t block = e / block_elems, offset = (e % (bs * hd)) / hd;
          const bool in_copy = block == dst && offset < n_rows;
          const uint8_t want =
              in_copy ? (*before)[i + (src - dst) * block_elems * esize] : (*before)[i];
          ASSERT_EQ(buf->as<uint8_t>()[i], want) << "byte " << i;
        }
      }
    }
  }
}

// Bad arguments are bugs of the caller: they must stop with a message, not read out of bounds.
TEST(PagedAttentionDeathTest, RejectsBadArguments) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  core::ThreadPool pool(1);
  const int64_t n_blocks = 2, bs = 4, hd = 8;
  core::Buffer kb(n_blocks * bs * hd * 4), vb(n_blocks * bs * hd * 4);
  PagedKvLayer layer{kb.data(), vb.data(), core::DType::kF32, n_blocks, bs, 1, hd};
  std::vector<float> qv(2 * hd), ov(2 * hd);
  const core::Tensor q(qv.data(), core::DType::kF32, {1, 2, hd});
  core::Tensor out(ov.data(), core::DType::kF32, {1, 2, hd});
  const std::vector<int32_t> good_table = {1, 0}, bad_table = {1, 2}, neg_table = {-1, 0};
  const int32_t* good = good_table.data();
  const int32_t* bad = bad_table.data();
  const int32_t* neg = neg_table.data();
  const std::vector<int32_t> pos5 = {5}, pos2 = {2}, pos_neg = {-1};
  // The good call works: rows 0..5 are blocks 1 and 0.
  PagedAttention(Ctx(pool, Backend::kRef), {.q = &q,
                                            .layer = &layer,
                                            .block_tables = std::span(&good, 1),
                                            .positions = pos5,
                                            .scale = 1.0f,
                                            .out = &out});
  // A bad entry is fine while no token reads it, and fatal once one does.
  PagedAttention(Ctx(pool, Backend::kRef), {.q = &q,
                                            .layer = &layer,
                                            .block_tables = std::span(&bad, 1),
                                            .positions = pos2,
                                            .scale = 1.0f,
                                            .out = &out});
  EXPECT_DEATH(PagedAttention(Ctx(pool), {.q = &q,
                                          .layer = &layer,
                                          .block_tables = std::span(&bad, 1),
                                          .positions = pos5,
                                          .scale = 1.0f,
                                          .out = &out}),
               "block_table\\[1\\] = 2");
  EXPECT_DEATH(PagedAttention(Ctx(pool), {.q = &q,
                                          .layer = &layer,
                                          .block_tables = std::span(&neg, 1),
                                          .positions = pos2,
                                          .scale = 1.0f,
                                          .out = &out}),
               "block_table\\[0\\] = -1");
  EXPECT_DEATH(PagedAttention(Ctx(pool), {.q = &q,
                                          .layer = &layer,
                                          .block_tables = std::span(&good, 1),
                                          .positions = pos_neg,
                                          .scale = 1.0f,
                                          .out = &out}),
               "position -1");
  const int32_t* null_table = nullptr;
  EXPECT_DEATH(PagedAttention(Ctx(pool), {.q = &q,
                                          .layer = &layer,
                                          .block_tables = std::span(&null_table, 1),
                                          .positions = pos2,
                                          .scale = 1.0f,
                                          .out = &out}),
               "null block table");
  EXPECT_DEATH(PagedAttention(Ctx(pool), {.q = &q,
                                          .layer = &layer,
                                          .block_tables = std::span(&good, 1),
                                          .positions = pos2,
                                          .scale = 1.0f,
                                          .out = Tmp(const_cast<core::Tensor&>(q))}),
               "aliases");
  std::vector<float> q5v(2 * 5);
  const core::Tensor q_bad_hd(q5v.data(), core::DType::kF32, {1, 2, 5});
  EXPECT_DEATH(PagedAttention(Ctx(pool), {.q = &q_bad_hd,
                                          .layer = &layer,
                                          .block_tables = std::span(&good, 1),
                                          .positions = pos2,
                                          .scale = 1.0f,
                                          .out = &out}),
               "head_dim");
  PagedKvLayer i8 = layer;
  i8.dtype = core::DType::kI8;
  EXPECT_DEATH(PagedAttention(Ctx(pool), {.q = &q,
                                          .layer = &i8,
                                          .block_tables = std::span(&good, 1),
                                          .positions = pos2,
                                          .scale = 1.0f,
                                          .out = &out}),
               "f32, bf16 or f16");
  // WritePagedKv: slot out of range, shape mismatch.
  std::vector<float> kv(hd);
  const core::Tensor k1(kv.data(), core::DType::kF32, {1, 1, hd});
  const std::vector<int64_t> slot_oob = {8}, slot_neg = {-1}, two_slots = {0, 1};
  EXPECT_DEATH(
      WritePagedKv(SerialCtx(), {.k_new = &k1, .v_new = &k1, .slots = slot_oob, .layer = &layer}),
      "slot 8 outside");
  EXPECT_DEATH(
      WritePagedKv(SerialCtx(), {.k_new = &k1, .v_new = &k1, .slots = slot_neg, .layer = &layer}),
      "slot -1 outside");
  EXPECT_DEATH(
      WritePagedKv(SerialCtx(), {.k_new = &k1, .v_new = &k1, .slots = two_slots, .layer = &layer}),
      "2 slots");
  // CopyPagedKvRows: blocks and row count.
  EXPECT_DEATH(CopyPagedKvRows(SerialCtx(), {.layer = &layer, .src = 0, .dst = 2, .n_rows = 1}),
               "outside");
  EXPECT_DEATH(CopyPagedKvRows(SerialCtx(), {.layer = &layer, .src = -1, .dst = 0, .n_rows = 1}),
               "outside");
  EXPECT_DEATH(CopyPagedKvRows(SerialCtx(), {.layer = &layer, .src = 0, .dst = 1, .n_rows = 5}),
               "n_rows 5");
}

}  // namespace
}  // namespace arle::kernels
