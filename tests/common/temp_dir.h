// TempDir: a fresh, private temporary directory for one test, removed with everything in it when
// the object goes away.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "arle/core/check.h"

namespace arle::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "arle_test_XXXXXX").string();
    ARLE_CHECK(::mkdtemp(tmpl.data()) != nullptr) << "cannot create a temporary directory";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  std::string Path(const std::string& name) const { return File(name); }

 private:
  std::string path_;
};

}  // namespace arle::test
