// Replays saved fuzz inputs through a target's LLVMFuzzerTestOneInput without libFuzzer, so the seed
// corpus and every crasher found so far run in the ordinary CTest suite (any compiler, any build).
//   fuzz_replay_safetensors tests/fuzz/corpus/safetensors [more files or folders]
// Exit status 0 when every input ran; a finding aborts (sanitizer report or MG_FUZZ_CHECK).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::recursive_directory_iterator(argv[i]))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::is_regular_file(argv[i])) {
      files.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "%s: no such file or folder: %s\n", argv[0], argv[i]);
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...  (found no inputs)\n", argv[0]);
    return 2;
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay %s (%zu bytes)\n", f.c_str(), bytes.size());
    // A copy of exactly the right size, so ASan catches a read one past the end as libFuzzer would.
    std::vector<uint8_t> exact(bytes);
    static uint8_t none;
    LLVMFuzzerTestOneInput(exact.empty() ? &none : exact.data(), exact.size());
  }
  std::printf("%zu inputs replayed\n", files.size());
  return 0;
}
