// Shared by the fuzz targets: a scratch folder for the loaders that take a path, and a way to turn
// the fuzzer's bytes into something other than one blob. Every target defines LLVMFuzzerTestOneInput,
// built with libFuzzer (clang, -DMAXGRAD_FUZZ=ON) or with replay_main.cpp (any compiler, CTest).
//
// A target returns normally when the loader accepts the input or refuses it with its own error type;
// anything else (a sanitizer report, another exception, a broken invariant via MG_FUZZ_CHECK) is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define MG_FUZZ_CHECK(cond)                                                                   \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace mg::fuzz {

// One folder per process under the temp dir, removed at exit; files are rewritten for each input.
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      std::string tmpl = (std::filesystem::temp_directory_path() / "maxgrad_fuzz_XXXXXX").string();
      if (!mkdtemp(tmpl.data())) std::abort();
      path = tmpl;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  return dir.path;
}

inline std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = (scratch_dir() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) std::abort();
  return path;
}

// NUL-separated strings (a trailing NUL does not add an empty one).
inline std::vector<std::string> split_nul(const uint8_t* data, size_t size) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(data[i]);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace mg::fuzz
