// ScopedEnv: sets (or, with a null value, unsets) one environment variable for the life of the
// object and restores the previous state afterwards; ScopedHfHome isolates the Hugging Face cache.
// Not thread-safe (setenv).
#pragma once

#include <stdlib.h>

#include <string>

namespace arle::test {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// Points the Hugging Face cache lookup (io::ResolveHfCacheModel) at `home`/hub alone: HF_HOME is
// `home`, HOME an absent `home`/nohome, HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE and XDG_CACHE_HOME unset.
class ScopedHfHome {
 public:
  explicit ScopedHfHome(const std::string& home)
      : nohome_(home + "/nohome"),
        hf_home_("HF_HOME", home.c_str()),
        hub_cache_("HF_HUB_CACHE", nullptr),
        legacy_cache_("HUGGINGFACE_HUB_CACHE", nullptr),
        xdg_("XDG_CACHE_HOME", nullptr),
        user_home_("HOME", nohome_.c_str()) {}

 private:
  std::string nohome_;
  ScopedEnv hf_home_, hub_cache_, legacy_cache_, xdg_, user_home_;
};

}  // namespace arle::test
