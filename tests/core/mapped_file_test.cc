// Tests for MappedFile and the file helpers.
#include "arle/core/mapped_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "arle/core/file_util.h"

namespace arle::core {
namespace {

TEST(MappedFileTest, MapsWrittenFile) {
  const std::string dir = testing::TempDir() + "/arle_mapped_file_test";
  ASSERT_TRUE(MakeDirs(dir).ok());
  const std::string path = JoinPath(dir, "data.bin");
  ASSERT_TRUE(WriteFileAtomic(path, "hello world").ok());
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->size(), 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(file->data()), 5), "hello");
  EXPECT_EQ(*ReadFile(path), "hello world");
  std::filesystem::remove_all(dir);
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  auto file = MappedFile::Open("/nonexistent/arle/file");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find("/nonexistent/arle/file"), std::string::npos);
  EXPECT_EQ(MappedFile::Open("/tmp").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace arle::core
