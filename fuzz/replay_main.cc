// The replay driver linked with each fuzz target in a normal build (no libFuzzer): feeds every file
// under the given directories (recursively, in name order) or the given files to
// LLVMFuzzerTestOneInput once. A crash or sanitizer report fails the run; so does finding no input
// at all (a renamed corpus must not pass silently). An argument that does not exist is skipped.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> Inputs(const fs::path& arg) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) {
    out.push_back(arg);
  } else if (fs::is_directory(arg, ec)) {
    for (const auto& entry : fs::recursive_directory_iterator(arg, ec)) {
      if (entry.is_regular_file(ec)) out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n_inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::vector<fs::path> inputs = Inputs(argv[i]);
    std::printf("%s: %zu inputs\n", argv[i], inputs.size());
    for (const fs::path& path : inputs) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        return 1;
      }
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::printf("  %s (%zu bytes)\n", path.c_str(), bytes.size());
      std::fflush(stdout);  // so a crash names its input
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++n_inputs;
    }
  }
  if (n_inputs == 0) {
    std::fprintf(stderr, "no input found: the corpus directory is missing or empty\n");
    return 1;
  }
  std::printf("replayed %zu inputs\n", n_inputs);
  return 0;
}
