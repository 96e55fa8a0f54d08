#include "examples/common/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "maxgrad/core/error.h"
#include "maxgrad/core/kernel_path.h"

namespace mg::cli {

void Flags::add_string(const std::string& name, const std::string& help, std::optional<std::string>* out,
                       std::vector<std::string> choices) {
  std::string kind = "TEXT";
  if (!choices.empty()) {
    kind.clear();
    for (const auto& c : choices) kind += (kind.empty() ? "" : "|") + c;
  }
  flags_.push_back({name, help, kind, true, [name, out, choices](const std::string& v) {
                      if (!choices.empty()) {
                        bool ok = false;
                        for (const auto& c : choices) ok = ok || c == v;
                        if (!ok) throw UsageError("--" + name + ": '" + v + "' is not one of the allowed values");
                      }
                      *out = v;
                    }});
}

void Flags::add_int(const std::string& name, const std::string& help, std::optional<int64_t>* out, int64_t lo,
                    int64_t hi) {
  flags_.push_back({name, help, "N", true, [name, out, lo, hi](const std::string& v) {
                      char* end = nullptr;
                      errno = 0;
                      long long x = std::strtoll(v.c_str(), &end, 10);
                      if (v.empty() || *end != '\0' || errno == ERANGE)
                        throw UsageError("--" + name + ": '" + v + "' is not a whole number");
                      if (x < lo || x > hi)
                        throw UsageError("--" + name + ": " + v + " is out of range [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "]");
                      *out = x;
                    }});
}

void Flags::add_double(const std::string& name, const std::string& help, std::optional<double>* out, double lo,
                       double hi) {
  flags_.push_back({name, help, "X", true, [name, out, lo, hi](const std::string& v) {
                      char* end = nullptr;
                      errno = 0;
                      double x = std::strtod(v.c_str(), &end);
                      if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x))
                        throw UsageError("--" + name + ": '" + v + "' is not a finite number");
                      if (x < lo || x > hi) {
                        std::ostringstream o;
                        o << "--" << name << ": " << v << " is out of range [" << lo << ", " << hi << "]";
                        throw UsageError(o.str());
                      }
                      *out = x;
                    }});
}

void Flags::add_switch(const std::string& name, const std::string& help, bool* out) {
  flags_.push_back({name, help, "", false, [out](const std::string&) { *out = true; }});
}

void Flags::add_positional(const std::string& name, const std::string& help, std::vector<std::string>* out) {
  positional_name_ = name, positional_help_ = help, positional_ = out;
}

void Flags::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a.rfind("--", 0) != 0 && positional_) {
      positional_->push_back(a);
      continue;
    }
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "' (flags start with --)");
    std::string name = a.substr(2), value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    const Flag* f = nullptr;
    for (const Flag& x : flags_)
      if (x.name == name) f = &x;
    if (!f) throw UsageError("unknown flag --" + name);
    if (f->takes_value && !has_inline) {
      if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
      value = args[++i];
    } else if (!f->takes_value && has_inline) {
      throw UsageError("--" + name + " takes no value");
    }
    f->set(value);
  }
}

void Flags::parse_or_exit(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << usage();
      std::exit(0);
    }
  try {
    parse(args);
  } catch (const UsageError& e) {
    std::cerr << program_ << ": " << e.what() << "\n\n" << usage();
    std::exit(2);
  }
  // MAXGRAD_KERNELS: checked here, before any work, so a typo is a usage error and not a silent
  // fall-back; a path other than the default is said on stderr (stdout stays what the spec says).
  try {
    if (kernel_path() != KernelPath::fast)
      std::cerr << program_ << ": kernels: " << kernel_path_name(kernel_path())
                << " (MAXGRAD_KERNELS): plain loops, many times slower than the default\n";
  } catch (const Error& e) {
    std::cerr << program_ << ": " << e.what() << "\n";
    std::exit(2);
  }
}

std::string Flags::usage() const {
  std::ostringstream o;
  o << "usage: " << program_ << " " << synopsis_ << "\n\n";
  for (const Flag& f : flags_) {
    std::string left = "  --" + f.name + (f.kind.empty() ? "" : " " + f.kind);
    o << left << std::string(left.size() < 34 ? 34 - left.size() : 1, ' ') << f.help << "\n";
  }
  if (positional_) {
    const std::string left = "  " + positional_name_;
    o << left << std::string(left.size() < 34 ? 34 - left.size() : 1, ' ') << positional_help_ << "\n";
  }
  return o.str();
}

std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& value) {
  std::vector<int64_t> out;
  std::stringstream ss(value);
  std::string item;
  // "1,2," and ",1" name an empty item: refused like any other malformed one
  if (!value.empty() && (value.front() == ',' || value.back() == ','))
    throw UsageError("--" + flag + ": '" + value + "' must be a comma-separated list of positive whole numbers");
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long long x = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || x <= 0 || x > 100000)
      throw UsageError("--" + flag + ": '" + value + "' must be a comma-separated list of positive whole numbers");
    out.push_back(x);
  }
  if (out.empty()) throw UsageError("--" + flag + ": empty list");
  return out;
}

}  // namespace mg::cli
