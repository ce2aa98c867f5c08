// Tests for io/model_location: what a --model spec resolves to (HF directory, GGUF file, a
// directory holding one .gguf, ORG/NAME in the Hugging Face cache, the built-in model) and the
// errors for specs that name nothing usable.
#include "arle/io/model_location.h"

#include <gtest/gtest.h>

#include <string>

#include "arle/core/file_util.h"
#include "tests/common/scoped_env.h"
#include "tests/common/temp_dir.h"

namespace arle::io {
namespace {

using test::TempDir;
using Kind = ModelLocation::Kind;

void Touch(const std::string& path) { ASSERT_TRUE(core::WriteFileAtomic(path, "x").ok()) << path; }

TEST(ModelLocation, EmptySpecIsTheBuiltinModel) {
  BuiltinModel builtin;
  builtin.name = "tiny-builtin";
  auto r = ResolveModel("", &builtin);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, Kind::kBuiltin);
  EXPECT_EQ(r->path, "");
  EXPECT_EQ(r->description, "built-in tiny-builtin");

  r = ResolveModel("", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
}

TEST(ModelLocation, HfDirectoryWinsOverGgufFiles) {
  TempDir dir;
  Touch(dir.File("config.json"));
  Touch(dir.File("model.gguf"));
  auto r = ResolveModel(dir.path(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, Kind::kHfDirectory);
  EXPECT_EQ(r->path, dir.path());
  EXPECT_EQ(r->description, "local directory " + dir.path());
}

TEST(ModelLocation, GgufFileAndDirectoryWithOneGguf) {
  TempDir dir;
  Touch(dir.File("weights.gguf"));
  Touch(dir.File("README.md"));
  auto r = ResolveModel(dir.path(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, Kind::kGguf);
  EXPECT_EQ(r->path, dir.File("weights.gguf"));

  r = ResolveModel(dir.File("weights.gguf"), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, Kind::kGguf);
  EXPECT_EQ(r->path, dir.File("weights.gguf"));
  EXPECT_EQ(r->description, "GGUF file " + dir.File("weights.gguf"));
}

TEST(ModelLocation, DirectoryErrors) {
  TempDir dir;
  auto r = ResolveModel(dir.path(), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);

  Touch(dir.File("a.gguf"));
  Touch(dir.File("b.gguf"));
  r = ResolveModel(dir.path(), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("several .gguf files"), std::string::npos)
      << r.status().message();
}

TEST(ModelLocation, RepoIdThroughTheHfCache) {
  TempDir home;
  test::ScopedHfHome hf_home(home.path());
  const std::string snapshot = home.Path("hub/models--org--model/snapshots/rev1");
  ASSERT_TRUE(core::MakeDirs(snapshot).ok());
  Touch(snapshot + "/config.json");

  auto r = ResolveModel("org/model", nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, Kind::kHfDirectory);
  EXPECT_NE(r->description.find("Hugging Face cache"), std::string::npos) << r->description;

  r = ResolveModel("org/absent", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
}

TEST(ModelLocation, NothingByThatName) {
  BuiltinModel builtin;
  builtin.name = "b";
  auto r = ResolveModel("no-such-model-file", &builtin);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(r.status().ToString().find("omit --model"), std::string::npos)
      << r.status().ToString();
  // Without a built-in model the hint does not offer one.
  r = ResolveModel("no-such-model-file", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().ToString().find("omit --model"), std::string::npos)
      << r.status().ToString();
}

}  // namespace
}  // namespace arle::io
