// AdamW and SGD updates (torch.optim semantics, see optimizer.h) and global-norm clipping.
#include "arle/train/optimizer.h"

#include <cmath>
#include <cstring>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace arle::train {
namespace {

std::span<float> Values(const core::Tensor& t) {
  return {t.data_as<float>(), static_cast<size_t>(t.numel())};
}

void CheckParams(const std::vector<ParamRef>& params) {
  for (const ParamRef& p : params) {
    ARLE_CHECK(p.value.dtype() == core::DType::kF32 && p.grad.dtype() == core::DType::kF32)
        << p.name << ": parameters and grads must be f32 master copies";
    ARLE_CHECK(p.value.device() == core::Device::kCpu && p.grad.device() == core::Device::kCpu)
        << p.name;
    ARLE_CHECK(p.value.is_contiguous() && p.grad.is_contiguous()) << p.name;
    ARLE_CHECK(p.value.rank() == p.grad.rank()) << p.name;
    for (int i = 0; i < p.value.rank(); ++i) ARLE_CHECK(p.value.dim(i) == p.grad.dim(i)) << p.name;
  }
}

core::Status CheckUniqueNames(const std::vector<ParamRef>& params) {
  std::set<std::string> seen;
  for (const ParamRef& p : params) {
    if (!seen.insert(p.name).second) {
      return core::InvalidArgumentError("parameter \"" + p.name + "\" is listed twice");
    }
  }
  return core::OkStatus();
}

// One zero-initialized f32 state tensor per parameter, owned by the optimizer.
struct StateTensor {
  std::vector<float> data;
  core::Tensor view;
};

std::vector<StateTensor> ZeroStateLike(const std::vector<ParamRef>& params) {
  std::vector<StateTensor> out(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    out[i].data.assign(static_cast<size_t>(params[i].value.numel()), 0.0f);
    out[i].view = core::Tensor(out[i].data.data(), core::DType::kF32, params[i].value.shape());
  }
  return out;
}

// The f32 scalars of one AdamW step (torch's Python floats rounded where they meet f32 tensors).
struct AdamWConstants {
  float decay, b1, one_minus_b1, b2, one_minus_b2, bias_correction2_sqrt, eps, neg_step_size;
};

// n elements of one parameter: plain IEEE operations in torch's order, each rounded to f32 as
// torch's tensors are. optimizer.cc builds without errno from sqrt, so the loop vectorizes.
void AdamWRange(const AdamWConstants c, float* __restrict p, const float* __restrict g,
                float* __restrict m, float* __restrict v, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float pj = p[j] * c.decay;
    const float gj = g[j];
    m[j] = m[j] * c.b1 + c.one_minus_b1 * gj;
    v[j] = v[j] * c.b2 + c.one_minus_b2 * gj * gj;  // torch's addcmul: (value * g) * g
    const float denom = std::sqrt(v[j]) / c.bias_correction2_sqrt + c.eps;
    p[j] = pj + c.neg_step_size * m[j] / denom;  // torch's addcdiv: (value * m) / denom
  }
}

class AdamW final : public Optimizer {
 public:
  AdamW(std::vector<ParamRef> params, const AdamWOptions& o)
      : Optimizer(std::move(params)), o_(o), m_(ZeroStateLike(params_)), v_(ZeroStateLike(params_)) {}

  void Step(double lr) override {
    const double t = static_cast<double>(step_ + 1);
    // Python-float scalars as torch forms them, then rounded to f32 where they meet f32 tensors.
    const float decay = static_cast<float>(1.0 - lr * o_.weight_decay);
    const float b1 = static_cast<float>(o_.beta1), one_minus_b1 = static_cast<float>(1.0 - o_.beta1);
    const float b2 = static_cast<float>(o_.beta2), one_minus_b2 = static_cast<float>(1.0 - o_.beta2);
    const double bias_correction1 = 1.0 - std::pow(o_.beta1, t);
    const float neg_step_size = static_cast<float>(-(lr / bias_correction1));
    const float bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(o_.beta2, t)));
    const float eps = static_cast<float>(o_.eps);
    for (size_t i = 0; i < params_.size(); ++i) {
      std::span<float> p = Values(params_[i].value);
      std::span<const float> g = Values(params_[i].grad);
      float* m = m_[i].data.data();
      float* v = v_[i].data.data();
      // x * 1 is exact, so the undecayed parameters share the loop.
      const float d = DecaysWeight(params_[i]) && o_.weight_decay != 0.0 ? decay : 1.0f;
      const AdamWConstants c{
          d, b1, one_minus_b1, b2, one_minus_b2, bias_correction2_sqrt, eps, neg_step_size};
      auto update = [&](int64_t begin, int64_t end) {
        AdamWRange(c, p.data() + begin, g.data() + begin, m + begin, v + begin, end - begin);
      };
      const auto n = static_cast<int64_t>(p.size());
      if (o_.pool != nullptr) {
        o_.pool->ParallelFor(n, /*work_per_item=*/8, update);
      } else {
        update(0, n);
      }
    }
    ++step_;
  }

  void ForEachState(const std::function<void(const std::string&, core::Tensor)>& fn) override {
    for (size_t i = 0; i < params_.size(); ++i) {
      fn(params_[i].name + ".exp_avg", m_[i].view);
      fn(params_[i].name + ".exp_avg_sq", v_[i].view);
    }
  }

 private:
  AdamWOptions o_;
  std::vector<StateTensor> m_;  // first moments, one per parameter
  std::vector<StateTensor> v_;  // second moments
};

class Sgd final : public Optimizer {
 public:
  Sgd(std::vector<ParamRef> params, const SgdOptions& o)
      : Optimizer(std::move(params)), o_(o) {
    if (o_.momentum != 0.0) buf_ = ZeroStateLike(params_);
  }

  void Step(double lr) override {
    const float wd = static_cast<float>(o_.weight_decay);
    const float momentum = static_cast<float>(o_.momentum);
    const float neg_lr = static_cast<float>(-lr);
    // torch creates the buffer as a copy of d at the first update; a restored step() > 0 means
    // the imported buffers are live.
    const bool first = step_ == 0;
    for (size_t i = 0; i < params_.size(); ++i) {
      std::span<float> p = Values(params_[i].value);
      std::span<const float> g = Values(params_[i].grad);
      const bool decays = DecaysWeight(params_[i]) && o_.weight_decay != 0.0;
      float* buf = buf_.empty() ? nullptr : buf_[i].data.data();
      for (size_t j = 0; j < p.size(); ++j) {
        float d = g[j];
        if (decays) d = d + wd * p[j];
        if (buf != nullptr) {
          buf[j] = first ? d : buf[j] * momentum + d;
          d = buf[j];
        }
        p[j] = p[j] + neg_lr * d;
      }
    }
    ++step_;
  }

  void ForEachState(const std::function<void(const std::string&, core::Tensor)>& fn) override {
    for (size_t i = 0; i < buf_.size(); ++i) fn(params_[i].name + ".momentum_buffer", buf_[i].view);
  }

 private:
  SgdOptions o_;
  std::vector<StateTensor> buf_;  // momentum buffers (empty when momentum == 0)
};

bool InUnitInterval(double x) { return std::isfinite(x) && x >= 0.0 && x < 1.0; }

}  // namespace

Optimizer::Optimizer(std::vector<ParamRef> params) : params_(std::move(params)) {
  CheckParams(params_);
}

core::StatusOr<std::unique_ptr<Optimizer>> MakeAdamW(std::vector<ParamRef> params,
                                                     const AdamWOptions& o) {
  if (!InUnitInterval(o.beta1) || !InUnitInterval(o.beta2)) {
    return core::InvalidArgumentError("AdamW betas must be in [0, 1), got (" +
                                      std::to_string(o.beta1) + ", " + std::to_string(o.beta2) + ")");
  }
  if (!std::isfinite(o.eps) || o.eps < 0) {
    return core::InvalidArgumentError("AdamW eps must be >= 0, got " + std::to_string(o.eps));
  }
  if (!std::isfinite(o.weight_decay) || o.weight_decay < 0) {
    return core::InvalidArgumentError("weight decay must be >= 0, got " +
                                      std::to_string(o.weight_decay));
  }
  ARLE_RETURN_IF_ERROR(CheckUniqueNames(params));
  return std::unique_ptr<Optimizer>(new AdamW(std::move(params), o));
}

core::StatusOr<std::unique_ptr<Optimizer>> MakeSgd(std::vector<ParamRef> params,
                                                   const SgdOptions& o) {
  if (!InUnitInterval(o.momentum)) {
    return core::InvalidArgumentError("SGD momentum must be in [0, 1), got " +
                                      std::to_string(o.momentum));
  }
  if (!std::isfinite(o.weight_decay) || o.weight_decay < 0) {
    return core::InvalidArgumentError("weight decay must be >= 0, got " +
                                      std::to_string(o.weight_decay));
  }
  ARLE_RETURN_IF_ERROR(CheckUniqueNames(params));
  return std::unique_ptr<Optimizer>(new Sgd(std::move(params), o));
}

void ZeroGrads(const std::vector<ParamRef>& params) {
  for (const ParamRef& p : params) {
    std::memset(p.grad.data(), 0, static_cast<size_t>(p.grad.numel()) * sizeof(float));
  }
}

double ClipGradNorm(const std::vector<ParamRef>& params, double max_norm) {
  double sum_sq = 0.0;
  for (const ParamRef& p : params) {
    for (float g : Values(p.grad)) sum_sq += static_cast<double>(g) * g;
  }
  const double total = std::sqrt(sum_sq);
  if (max_norm <= 0.0 || !std::isfinite(total)) return total;
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    const float c = static_cast<float>(coef);
    for (const ParamRef& p : params) {
      for (float& g : Values(p.grad)) g *= c;
    }
  }
  return total;
}

}  // namespace arle::train
