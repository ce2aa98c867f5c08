// Tests for io/hf_cache: resolving ORG/NAME in the Hugging Face hub cache (refs/main, the only
// snapshot, HF_HUB_CACHE, NotFound listing the places searched, ids that are not ORG/NAME).
#include "arle/io/hf_cache.h"

#include <gtest/gtest.h>

#include "tests/common/scoped_env.h"
#include "tests/common/temp_dir.h"

#include <filesystem>
#include <string>

#include "arle/core/file_util.h"

namespace arle::io {
namespace {

namespace fs = std::filesystem;
using ::arle::test::TempDir;

using test::ScopedEnv;

TEST(HfCache, ResolvesSnapshots) {
  TempDir home;
  test::ScopedHfHome hf_home(home.path());

  const std::string repo = home.Path("hub/models--Qwen--Qwen3-0.6B");
  ASSERT_TRUE(core::MakeDirs(repo + "/snapshots/c1899de289a04d12100db370d81485cdf75e47ca").ok());
  ASSERT_TRUE(core::MakeDirs(repo + "/snapshots/0123456789abcdef").ok());
  ASSERT_TRUE(core::MakeDirs(repo + "/refs").ok());
  ASSERT_TRUE(core::WriteFileAtomic(repo + "/refs/main",
                                    "c1899de289a04d12100db370d81485cdf75e47ca")
                  .ok());
  auto r = ResolveHfCacheModel("Qwen/Qwen3-0.6B");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(fs::path(*r).lexically_normal(),
            fs::path(repo + "/snapshots/c1899de289a04d12100db370d81485cdf75e47ca")
                .lexically_normal());

  // Without refs/main, the only snapshot.
  const std::string other = home.Path("hub/models--meta-llama--Llama-3.2-1B");
  ASSERT_TRUE(core::MakeDirs(other + "/snapshots/abc").ok());
  r = ResolveHfCacheModel("meta-llama/Llama-3.2-1B");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(fs::path(*r).lexically_normal(), fs::path(other + "/snapshots/abc").lexically_normal());

  // HF_HUB_CACHE is searched too.
  TempDir hub2;
  ScopedEnv hub_cache2("HF_HUB_CACHE", hub2.path().c_str());
  ASSERT_TRUE(core::MakeDirs(hub2.Path("models--org--only-here/snapshots/r1")).ok());
  r = ResolveHfCacheModel("org/only-here");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(fs::path(*r).lexically_normal(),
            fs::path(hub2.Path("models--org--only-here/snapshots/r1")).lexically_normal());

  // Absent: NotFound listing the places searched.
  r = ResolveHfCacheModel("nobody/nothing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(home.path()), std::string::npos) << r.status().message();

  for (const char* bad : {"", "../etc", "a/../../b", "/abs/path", "a/b/c"}) {
    EXPECT_FALSE(ResolveHfCacheModel(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace arle::io
