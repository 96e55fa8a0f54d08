// A strict command-line parser for the example programs: every flag is declared with its type and
// range; an unknown flag, a missing value or an out-of-range number is a usage error (exit 2)
// reported before any work starts.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mg::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Flags {
 public:
  Flags(std::string program, std::string synopsis) : program_(std::move(program)), synopsis_(std::move(synopsis)) {}

  void add_string(const std::string& name, const std::string& help, std::optional<std::string>* out,
                  std::vector<std::string> choices = {});
  void add_int(const std::string& name, const std::string& help, std::optional<int64_t>* out, int64_t lo, int64_t hi);
  void add_double(const std::string& name, const std::string& help, std::optional<double>* out, double lo, double hi);
  void add_switch(const std::string& name, const std::string& help, bool* out);
  // Arguments that are not flags (e.g. predict's image files) are collected in *out; without this
  // call they are a usage error.
  void add_positional(const std::string& name, const std::string& help, std::vector<std::string>* out);

  // Throws UsageError; parse_or_exit prints it with the usage text and exits with status 2.
  void parse(const std::vector<std::string>& args);
  void parse_or_exit(int argc, char** argv);
  std::string usage() const;

 private:
  struct Flag {
    std::string name, help, kind;
    bool takes_value = true;
    std::function<void(const std::string&)> set;
  };
  std::string program_, synopsis_;
  std::vector<Flag> flags_;
  std::string positional_name_, positional_help_;
  std::vector<std::string>* positional_ = nullptr;
};

// "1,2,3" -> {1, 2, 3}; throws UsageError naming the flag when malformed.
std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& value);

}  // namespace mg::cli
