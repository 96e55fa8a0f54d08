// Running the build's programs from a test: train_cifar, predict, bn_inspect as a user would, with
// their exit status, stdout and stderr captured (test_train, test_bn_inspect, test_mpi_train).
#pragma once
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mg::testing {

// The program's path in the build folder CTest names in MAXGRAD_BIN.
inline std::string bin(const std::string& program) {
  const char* dir = std::getenv("MAXGRAD_BIN");
  REQUIRE_MESSAGE(dir != nullptr, "MAXGRAD_BIN (the build folder holding ", program, ") is not set; run through ctest");
  return (std::filesystem::path(dir) / program).string();
}

// s in single quotes for sh, any character allowed.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Result {
  int status = -1;
  std::string out, err;
};

// Runs `command` (already quoted for sh) in `cwd` with MAXGRAD_DATA unset (so no CIFAR-10 is found
// by accident) and `env` ("NAME=value ...") set; stdout and stderr go to out_prefix + ".stdout" /
// ".stderr". A program killed by a signal reports 128 + the signal, as the shell does.
inline Result run_command(const std::string& command, const std::string& cwd, const std::string& out_prefix,
                          const std::string& env = "") {
  const std::string cmd = "cd " + quote(cwd) + " && env -u MAXGRAD_DATA " + env + " " + command;
  const std::string out = out_prefix + ".stdout", err = out_prefix + ".stderr";
  const int raw = std::system((cmd + " >" + quote(out) + " 2>" + quote(err)).c_str());
  Result r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : WIFSIGNALED(raw) ? 128 + WTERMSIG(raw) : -1;
  r.out = read_text(out), r.err = read_text(err);
  return r;
}

// The build's `program` with `args`, each quoted.
inline std::string program_command(const std::string& program, const std::vector<std::string>& args) {
  std::string cmd = quote(bin(program));
  for (const auto& a : args) cmd += " " + quote(a);
  return cmd;
}

}  // namespace mg::testing
