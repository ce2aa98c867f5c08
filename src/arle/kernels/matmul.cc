// MatMul validation and dispatch (ref or Highway), threaded over blocks of output columns.
#include "arle/kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/quant_dot.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels {
namespace {

bool IsFloatWeight(core::DType d) {
  return d == core::DType::kF32 || d == core::DType::kF16 || d == core::DType::kBF16;
}

// Columns per work unit: the SIMD kernel's row tile, so thread splits never cut a tile.
constexpr int64_t kColumnBlock = 4;

}  // namespace

void MatMul(const core::Tensor& x, const core::Tensor& w, const core::Tensor* bias, core::Tensor& y,
            core::ThreadPool& pool, Backend backend) {
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
  MatMulArgs args;
  args.x = x.data_as<float>();
  args.x_stride = x.dim(1);
  args.w = w.data();
  args.w_dtype = w.dtype();
  if (bias != nullptr) {
    ARLE_CHECK(bias->rank() == 1 && IsFloatWeight(bias->dtype()) && bias->dim(0) == w.dim(0))
        << "MatMul bias: " << bias->ToString() << " for w " << w.ToString();
    args.bias = bias->data();
    args.bias_dtype = bias->dtype();
  }
  args.y = y.data_as<float>();
  args.y_stride = y.dim(1);
  args.n_tok = x.dim(0);
  args.n_in = x.dim(1);
  args.n_out = w.dim(0);
  if (args.n_tok == 0 || args.n_out == 0) return;
  const bool use_ref = ResolveBackend(backend) == Backend::kRef;
  const bool quantized = IsSupportedQuant(args.w_dtype);
  // Block weights multiply 8-bit activations in integers: each token is quantized once here,
  // into this thread's scratch (MatMul may run on several threads at once, each with its pool).
  // The workers reach the scratch through `act`: a thread_local named in the lambda would be
  // each worker's own.
  thread_local std::vector<char> act_scratch;
  if (quantized) {
    const int64_t act_bytes = ActRowBytes(args.w_dtype, args.n_in);
    act_scratch.resize(static_cast<size_t>(args.n_tok * act_bytes));
    char* act = act_scratch.data();
    pool.ParallelFor(args.n_tok, /*work_per_item=*/4 * args.n_in, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* x_t = args.x + t * args.x_stride;
        if (use_ref) {
          QuantizeActivationRow(args.w_dtype, x_t, args.n_in, act + t * act_bytes);
        } else {
          cpu::QuantizeActivationRow(args.w_dtype, x_t, args.n_in, act + t * act_bytes);
        }
      }
    });
    args.xq = act;
  }
  const int64_t n_blocks = (args.n_out + kColumnBlock - 1) / kColumnBlock;
  // Column blocks are claimed in chunks (about 8 per worker) rather than split in fixed halves:
  // every element is computed the same way whoever computes it, and a worker the OS slows down
  // then holds up nobody.
  const int64_t chunk = std::max<int64_t>(1, n_blocks / (8 * pool.size()));
  pool.ParallelForChunks(n_blocks, /*work_per_item=*/kColumnBlock * args.n_tok * args.n_in, chunk,
                         [&](int64_t b_begin, int64_t b_end) {
                           const int64_t o_begin = b_begin * kColumnBlock;
                           const int64_t o_end = std::min(args.n_out, b_end * kColumnBlock);
                           if (use_ref) {
                             ref::MatMulRows(args, o_begin, o_end);
                           } else if (quantized) {
                             cpu::QuantMatMulRows(args, o_begin, o_end);
                           } else {
                             cpu::MatMulRows(args, o_begin, o_end);
                           }
                         });
}

}  // namespace arle::kernels
