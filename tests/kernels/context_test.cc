// The kernel execution context: backend names as ARLE_KERNELS takes them (anything else is an
// error, never a silent cpu), and contexts that run ops on their own pool and scratch.
#include "arle/kernels/context.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "arle/core/buffer.h"
#include "arle/kernels/elementwise.h"

namespace arle::kernels {
namespace {

TEST(ContextTest, ParsesTheThreeBackendsAndRejectsAnythingElse) {
  EXPECT_EQ(*ParseBackend("ref"), Backend::kRef);
  EXPECT_EQ(*ParseBackend("cpu"), Backend::kCpu);
  for (const char* bad : {"", "CPU", "gpu", "default", "cpu "}) {
    const auto b = ParseBackend(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(b.status().ToString().find("ref, cpu, cuda"), std::string::npos);
  }
  const auto cuda = ParseBackend("cuda");
  if (!CudaCompiled()) {
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), core::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(Context::Cuda().ok());
  }
  EXPECT_STREQ(BackendName(Backend::kCuda), "cuda");
}

TEST(ContextTest, TheEnvironmentNamesTheBackend) {
  const char* saved = std::getenv("ARLE_KERNELS");
  const std::string restore = saved != nullptr ? saved : "";
  ::unsetenv("ARLE_KERNELS");
  EXPECT_EQ(*BackendFromEnvironment(), Backend::kCpu);
  ::setenv("ARLE_KERNELS", "ref", 1);
  EXPECT_EQ(*BackendFromEnvironment(), Backend::kRef);
  ::setenv("ARLE_KERNELS", "simd", 1);
  const auto bad = BackendFromEnvironment();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("ARLE_KERNELS"), std::string::npos);
  EXPECT_NE(bad.status().ToString().find("'simd'"), std::string::npos);
  if (saved != nullptr) {
    ::setenv("ARLE_KERNELS", restore.c_str(), 1);
  } else {
    ::unsetenv("ARLE_KERNELS");
  }
}

TEST(ContextTest, ScratchIsAlignedAndGrows) {
  Scratch scratch;
  char* a = scratch.Get(0, 10);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, 10);
  char* b = scratch.Get(1, 1 << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 64, 0u);
  std::memset(b, 2, 1 << 20);
  EXPECT_EQ(scratch.Get(0, 10)[9], 1);  // another slot's growth leaves slot 0 alone
}

TEST(ContextTest, OpsRunOnTheContextsPool) {
  core::ThreadPool pool(2);
  const Context ctx = Context::Cpu(Backend::kRef, pool);
  EXPECT_EQ(&ctx.pool(), &pool);
  EXPECT_TRUE(ctx.is_cpu());
  EXPECT_EQ(ctx.cuda_stream(), nullptr);
  core::Buffer a(4 * 4), b(4 * 4), out(4 * 4);
  for (int i = 0; i < 4; ++i) {
    a.as<float>()[i] = static_cast<float>(i);
    b.as<float>()[i] = 10.0f;
  }
  core::Tensor ta = a.AsTensor(core::DType::kF32, {4}), tb = b.AsTensor(core::DType::kF32, {4});
  core::Tensor to = out.AsTensor(core::DType::kF32, {4});
  Add(ctx, {.a = &ta, .b = &tb, .out = &to});
  EXPECT_EQ(out.as<float>()[3], 13.0f);
}

TEST(ContextDeathTest, AnOpRefusesMemoryOfAnotherDevice) {
  core::ThreadPool pool(1);
  const Context ctx = Context::Cpu(Backend::kCpu, pool);
  float x[4] = {};
  core::Tensor host(x, core::DType::kF32, {4});
  core::Tensor device(x, core::DType::kF32, {4}, core::Device::kCuda);
  EXPECT_DEATH(Add(ctx, {.a = &host, .b = &device, .out = &host}), "not in cpu memory");
}

}  // namespace
}  // namespace arle::kernels
