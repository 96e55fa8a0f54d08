#include "examples/common/archive.h"

#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <vector>

#include "maxgrad/data/dataset.h"

namespace mg::cli {

using data::DataError;

namespace {

// Runs `args` (no shell, so no quoting problems with odd paths); returns its stdout, at most
// max_out bytes. Throws DataError unless it exits 0.
std::string run(const std::vector<std::string>& args, const std::string& what, size_t max_out) {
  int out[2];
  if (::pipe(out) != 0) throw DataError("cannot start tar to " + what);
  const pid_t pid = fork();
  if (pid < 0) throw DataError("cannot start tar to " + what);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]), ::close(out[1]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[1 << 16];
  bool too_long = false;
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) != 0;) {
    if (n < 0) continue;  // EINTR
    if (text.size() + static_cast<size_t>(n) > max_out) too_long = true;
    if (!too_long) text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw DataError("tar could not " + what +
                    (WIFEXITED(status) && WEXITSTATUS(status) == 127 ? std::string(" (is tar installed?)") : ""));
  if (too_long) throw DataError("tar could not " + what + ": its listing is longer than " + std::to_string(max_out));
  return text;
}

bool has_dot_dot(const std::string& name) {
  std::stringstream parts(name);
  for (std::string p; std::getline(parts, p, '/');)
    if (p == "..") return true;
  return false;
}

}  // namespace

void extract_archive(const std::string& archive, const std::string& dir, const ArchiveBudget& budget) {
  // GNU tar's verbose listing: "drwxr-xr-x 0/0 0 2019-03-31 00:00 test/airplane/", one line a member.
  const std::string listing =
      run({"tar", "-tvzf", archive}, "list " + archive, static_cast<size_t>(budget.max_members) * 256);
  std::istringstream lines(listing);
  uint64_t bytes = 0, members = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string mode, owner, date, time, name;
    uint64_t size = 0;
    if (!(f >> mode >> owner >> size >> date >> time) || !std::getline(f >> std::ws, name))
      throw DataError(archive + ": cannot read tar's listing line '" + line.substr(0, 200) + "'");
    const std::string member = "member '" + name.substr(0, 200) + "'";
    if (mode[0] != '-' && mode[0] != 'd')
      throw DataError(archive + ": " + member + " is not a file or a folder (" +
                      (mode[0] == 'l'   ? "a symbolic link"
                       : mode[0] == 'h' ? "a hard link"
                                        : "type " + mode.substr(0, 1)) +
                      "); only files and folders are extracted");
    if (name.empty() || name[0] == '/' || has_dot_dot(name))
      throw DataError(archive + ": " + member + " would be written outside the folder it is extracted into");
    bytes += size;
    if (++members > budget.max_members || bytes > budget.max_bytes)
      throw DataError(archive + ": more than " + std::to_string(budget.max_members) + " members or " +
                      std::to_string(budget.max_bytes) + " bytes; a CIFAR-10 archive is far smaller");
  }
  run({"tar", "-xzf", archive, "-C", dir, "--no-same-owner", "--no-same-permissions"}, "extract " + archive, 1 << 20);
}

}  // namespace mg::cli
