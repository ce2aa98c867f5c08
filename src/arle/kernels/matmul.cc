// MatMul validation and dispatch (ref, Highway or CUDA), threaded over blocks of output columns.
#include "arle/kernels/matmul.h"

#include <algorithm>
#include <functional>
#include <span>
#include <vector>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/dispatch.h"
#include "arle/kernels/gemm.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/quant_dot.h"
#include "arle/kernels/ref/ref_kernels.h"
#include "arle/kernels/rmsnorm_args.h"

namespace arle::kernels {
namespace {

bool IsFloatWeight(core::DType d) {
  return d == core::DType::kF32 || d == core::DType::kF16 || d == core::DType::kBF16;
}

// Columns per work unit: the SIMD kernel's row tile, so thread splits never cut a tile.
constexpr int64_t kColumnBlock = 4;

// Checks y = x * W^T (+ bias) and fills its arguments (xq is set by PrepareInput).
MatMulParams CheckedArgs(const core::Tensor& x, const MatMulOutput& out) {
  ARLE_CHECK(out.w != nullptr && out.y != nullptr) << "MatMul: null weight or output";
  const core::Tensor& w = *out.w;
  const core::Tensor& y = *out.y;
  ARLE_CHECK(x.rank() == 2 && x.dtype() == core::DType::kF32 && x.is_contiguous())
      << "MatMul x: " << x.ToString();
  ARLE_CHECK(w.rank() == 2 && (IsFloatWeight(w.dtype()) || IsSupportedQuant(w.dtype())) &&
             w.is_contiguous())
      << "MatMul w: " << w.ToString();
  // (A block-format Tensor's rows are whole blocks: core::Tensor checks that.)
  ARLE_CHECK(y.rank() == 2 && y.dtype() == core::DType::kF32 && y.is_contiguous())
      << "MatMul y: " << y.ToString();
  ARLE_CHECK_EQ(x.dim(1), w.dim(1));
  ARLE_CHECK_EQ(y.dim(0), x.dim(0));
  ARLE_CHECK_EQ(y.dim(1), w.dim(0));
  ARLE_CHECK(x.data() != y.data()) << "MatMul: y must not alias x";
  MatMulParams args;
  args.x = x.data_as<float>();
  args.x_stride = x.dim(1);
  args.w = w.data();
  args.w_dtype = w.dtype();
  if (out.bias != nullptr) {
    const core::Tensor& bias = *out.bias;
    ARLE_CHECK(bias.rank() == 1 && IsFloatWeight(bias.dtype()) && bias.dim(0) == w.dim(0))
        << "MatMul bias: " << bias.ToString() << " for w " << w.ToString();
    args.bias = bias.data();
    args.bias_dtype = bias.dtype();
  }
  args.y = y.data_as<float>();
  args.y_stride = y.dim(1);
  args.n_tok = x.dim(0);
  args.n_in = x.dim(1);
  args.n_out = w.dim(0);
  return args;
}

// Which quantized activations a weight format multiplies.
enum class ActFormat {
  kNone,         // float weights: they read the f32 input
  kBlocks,       // Q8_0-style 32-value blocks (Q8_0, Q4_0 weights)
  kSuperBlocks,  // Q8_K-style 256-value super-blocks (the K-quants)
};

ActFormat ActivationFormat(core::DType w) {
  if (!IsSupportedQuant(w)) return ActFormat::kNone;
  return UsesSuperBlockActivations(w) ? ActFormat::kSuperBlocks : ActFormat::kBlocks;
}

// Checks an InputRmsNorm over x and fills its RmsNorm arguments.
RmsNormParams CheckedNormArgs(const core::Tensor& x, const InputRmsNorm& norm) {
  ARLE_CHECK(norm.w != nullptr && norm.normed != nullptr) << "MatMul: null norm weight or output";
  const core::Tensor& normed = *norm.normed;
  ARLE_CHECK(x.rank() == 2 && normed.rank() == 2 && x.dim(0) == normed.dim(0) &&
             x.dim(1) == normed.dim(1))
      << "MatMul norm: x " << x.ToString() << " normed " << normed.ToString();
  return CheckedRmsNormParams(x, *norm.w, norm.eps, *norm.normed);
}

// The input pass before the column loop, one parallel loop over the tokens of `input` (f32
// [n_tok, n_in]): each token's row is first normalized into `input` (when `norm`, which reads the
// raw rows), then quantized once per activation format the weights of `args` need, while it is in
// L1. The quantized rows go to the context's scratch (slots 0 and 1), and each args.xq points at
// its format's.
void PrepareInput(const Context& ctx, const RmsNormParams* norm, const core::Tensor& input,
                  std::span<MatMulParams> args) {
  const bool use_ref = ctx.backend() == Backend::kRef;
  core::ThreadPool& pool = ctx.pool();
  struct Quantized {
    core::DType w_dtype;  // a weight format of this activation format
    int64_t row_bytes;
    char* rows;
  };
  Quantized formats[2];
  int n_formats = 0;
  const int64_t n_tok = input.dim(0), n_in = input.dim(1);
  for (const ActFormat format : {ActFormat::kBlocks, ActFormat::kSuperBlocks}) {
    const auto first = std::find_if(args.begin(), args.end(), [&](const MatMulParams& a) {
      return ActivationFormat(a.w_dtype) == format;
    });
    if (first == args.end()) continue;
    const int64_t row_bytes = ActRowBytes(first->w_dtype, n_in);
    char* rows = ctx.scratch().Get(n_formats, static_cast<size_t>(n_tok * row_bytes));
    formats[n_formats++] = {first->w_dtype, row_bytes, rows};
    for (MatMulParams& a : args) {
      if (ActivationFormat(a.w_dtype) == format) a.xq = rows;
    }
  }
  if (norm == nullptr && n_formats == 0) return;
  const float* x = input.data_as<float>();
  const int64_t work = (norm != nullptr ? 2 * n_in : 0) + n_formats * 4 * n_in;
  pool.ParallelFor(n_tok, work, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (norm != nullptr) {
        if (use_ref) {
          ref::RmsNormRows(*norm, t, t + 1);
        } else {
          cpu::RmsNormRows(*norm, t, t + 1);
        }
      }
      for (int i = 0; i < n_formats; ++i) {
        const Quantized& f = formats[i];
        if (use_ref) {
          QuantizeActivationRow(f.w_dtype, x + t * n_in, n_in, f.rows + t * f.row_bytes);
        } else {
          cpu::QuantizeActivationRow(f.w_dtype, x + t * n_in, n_in, f.rows + t * f.row_bytes);
        }
      }
    }
  });
}

// Output columns [o_begin, o_end) of every token on the chosen backend.
void Rows(const MatMulParams& a, bool use_ref, int64_t o_begin, int64_t o_end) {
  if (use_ref) {
    ref::MatMulRows(a, o_begin, o_end);
  } else if (IsSupportedQuant(a.w_dtype)) {
    cpu::QuantMatMulRows(a, o_begin, o_end);
  } else {
    cpu::MatMulRows(a, o_begin, o_end);
  }
}

// Column blocks are claimed in chunks (about 8 per worker) rather than split in fixed halves:
// every element is computed the same way whoever computes it, and a worker the OS slows down then
// holds up nobody.
void ForEachColumnChunk(int64_t n_blocks, int64_t work_per_block, core::ThreadPool& pool,
                        const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t chunk = std::max<int64_t>(1, n_blocks / (8 * pool.size()));
  pool.ParallelForChunks(n_blocks, work_per_block, chunk, fn);
}

// MatMul on CUDA: the norm first (into *normed), then each product.
void CudaMatMulAll(const Context& ctx, const RmsNormParams* norm, std::span<MatMulParams> args) {
  if (norm != nullptr) CudaRmsNorm(ctx, *norm);
  for (const MatMulParams& a : args) {
    if (IsSupportedQuant(a.w_dtype)) NoKernelFor("MatMul with block-format weights", ctx);
    CudaMatMul(ctx, a);
  }
}

// Checks every tensor of a matmul is in ctx's memory.
void CheckMatMulDevices(const Context& ctx, const core::Tensor& x, const MatMulOutput& out,
                        const InputRmsNorm* norm) {
  CheckOnDevice(ctx, x, "MatMul");
  CheckOnDevice(ctx, *out.w, "MatMul");
  CheckOnDevice(ctx, *out.y, "MatMul");
  if (out.bias != nullptr) CheckOnDevice(ctx, *out.bias, "MatMul");
  if (norm != nullptr) {
    CheckOnDevice(ctx, *norm->w, "MatMul");
    CheckOnDevice(ctx, *norm->normed, "MatMul");
  }
}

// Whether ctx multiplies this product with the GEMM (FloatMatMul::kGemm, f32 weights, CPU).
bool ByGemm(const Context& ctx, const MatMulParams& a) {
  return ctx.is_cpu() && ctx.float_matmul() == FloatMatMul::kGemm && a.w_dtype == core::DType::kF32;
}

// y = x * w^T (+ bias) as the GEMM c = A * B with A = x and B = w transposed (its micro-panels
// packed from w's rows), then the bias added to each block of rows by the worker that computed it.
void GemmMatMul(const Context& ctx, const MatMulParams& a) {
  GemmParams<float> p;
  p.a = a.x;
  p.a_row = a.x_stride;
  p.a_col = 1;
  p.b = static_cast<const float*>(a.w);
  p.b_row = 1;
  p.b_col = a.n_in;
  p.c = a.y;
  p.m = a.n_tok;
  p.n = a.n_out;
  p.k = a.n_in;
  ParallelGemm(ctx, p, [&](int64_t t_begin, int64_t t_end, int64_t o_begin, int64_t o_end) {
    if (a.bias == nullptr) return;
    for (int64_t t = t_begin; t < t_end; ++t) {
      float* y = a.y + t * a.y_stride;
      for (int64_t o = o_begin; o < o_end; ++o) y[o] += ref::LoadAsF32(a.bias, a.bias_dtype, o);
    }
  });
}

}  // namespace

void MatMul(const Context& ctx, const MatMulArgs& a) {
  ARLE_CHECK(a.x != nullptr) << "MatMul: null x";
  const core::Tensor& x = *a.x;
  RmsNormParams norm_args;
  if (a.norm != nullptr) norm_args = CheckedNormArgs(x, *a.norm);
  const core::Tensor& input = a.norm != nullptr ? *a.norm->normed : x;
  std::vector<MatMulParams> args;   // the products of the column loop below
  std::vector<MatMulParams> gemms;  // the products the GEMM computes (FloatMatMul::kGemm)
  for (const MatMulOutput& out : a.outputs) {
    MatMulParams p = CheckedArgs(input, out);
    CheckMatMulDevices(ctx, x, out, a.norm);
    (ByGemm(ctx, p) ? gemms : args).push_back(p);
  }
  if (input.dim(0) == 0) return;
  const RmsNormParams* norm = a.norm != nullptr ? &norm_args : nullptr;
  if (ctx.backend() == Backend::kCuda) return CudaMatMulAll(ctx, norm, args);
  const bool use_ref = ctx.backend() == Backend::kRef;
  PrepareInput(ctx, norm, input, args);
  for (const MatMulParams& p : gemms) GemmMatMul(ctx, p);
  std::vector<int64_t> first_block;  // index of each output's first column block
  int64_t n_blocks = 0;
  for (const MatMulParams& p : args) {
    first_block.push_back(n_blocks);
    n_blocks += (p.n_out + kColumnBlock - 1) / kColumnBlock;
  }
  if (n_blocks == 0) return;
  ForEachColumnChunk(n_blocks, kColumnBlock * input.dim(0) * input.dim(1), ctx.pool(),
                     [&](int64_t b_begin, int64_t b_end) {
                       for (size_t i = 0; i < args.size(); ++i) {
                         const int64_t own = (args[i].n_out + kColumnBlock - 1) / kColumnBlock;
                         const int64_t lo = std::max(b_begin, first_block[i]);
                         const int64_t hi = std::min(b_end, first_block[i] + own);
                         if (lo >= hi) continue;
                         Rows(args[i], use_ref, (lo - first_block[i]) * kColumnBlock,
                              std::min(args[i].n_out, (hi - first_block[i]) * kColumnBlock));
                       }
                     });
}

void MatMulSwiGlu(const Context& ctx, const MatMulSwiGluArgs& a) {
  ARLE_CHECK(a.x != nullptr) << "MatMulSwiGlu: null x";
  const core::Tensor& x = *a.x;
  RmsNormParams norm_args;
  if (a.norm != nullptr) norm_args = CheckedNormArgs(x, *a.norm);
  const core::Tensor& input = a.norm != nullptr ? *a.norm->normed : x;
  MatMulParams args[2] = {CheckedArgs(input, a.gate), CheckedArgs(input, a.up)};
  CheckMatMulDevices(ctx, x, a.gate, a.norm);
  CheckMatMulDevices(ctx, x, a.up, a.norm);
  ARLE_CHECK_EQ(args[0].n_out, args[1].n_out) << "MatMulSwiGlu: gate and up widths differ";
  ARLE_CHECK(a.gate.y->data() != a.up.y->data()) << "MatMulSwiGlu: gate and up outputs alias";
  if (!ctx.is_cpu()) NoKernelFor("MatMulSwiGlu", ctx);
  const int64_t n_out = args[0].n_out, n_tok = input.dim(0);
  if (n_tok == 0) return;
  const bool use_ref = ctx.backend() == Backend::kRef;
  PrepareInput(ctx, a.norm != nullptr ? &norm_args : nullptr, input, args);
  if (n_out == 0) return;
  if (ByGemm(ctx, args[0]) && ByGemm(ctx, args[1])) {
    // The GEMM order: both products, then SwiGlu's own code over the rows.
    GemmMatMul(ctx, args[0]);
    GemmMatMul(ctx, args[1]);
    ctx.pool().ParallelFor(n_tok, 4 * n_out, [&](int64_t t_begin, int64_t t_end) {
      for (int64_t t = t_begin; t < t_end; ++t) {
        float* g = args[0].y + t * args[0].y_stride;
        ref::SwiGluRange(g, args[1].y + t * args[1].y_stride, g, 0, n_out);
      }
    });
    return;
  }
  const int64_t n_blocks = (n_out + kColumnBlock - 1) / kColumnBlock;
  ForEachColumnChunk(n_blocks, 2 * kColumnBlock * n_tok * input.dim(1), ctx.pool(),
                     [&](int64_t b_begin, int64_t b_end) {
                       const int64_t o_begin = b_begin * kColumnBlock;
                       const int64_t o_end = std::min(n_out, b_end * kColumnBlock);
                       Rows(args[0], use_ref, o_begin, o_end);
                       Rows(args[1], use_ref, o_begin, o_end);
                       // The columns just computed, while they are in cache: SwiGlu's own code.
                       for (int64_t t = 0; t < n_tok; ++t) {
                         float* g = args[0].y + t * args[0].y_stride;
                         ref::SwiGluRange(g, args[1].y + t * args[1].y_stride, g, o_begin, o_end);
                       }
                     });
}

}  // namespace arle::kernels
