// Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without libFuzzer: every file
// named on the command line (or found in a named directory) once. `make test` runs it on the
// committed regression corpus (tests/fuzz/corpus/TARGET/) with the normal build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p = argv[i];
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs (is the corpus directory missing?)\n");
    return 1;
  }
  for (const auto& f : files) {
    std::printf("replaying %s\n", f.string().c_str());
    std::fflush(stdout);  // a crash names its input
    std::ifstream in(f, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%zu inputs replayed without a crash or an unexpected exception\n", files.size());
  return 0;
}
