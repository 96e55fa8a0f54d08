#include "maxgrad/nn/serialize/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "maxgrad/core/error.h"

namespace mg::serialize {

namespace fs = std::filesystem;

TempFile create_temp_beside(const std::string& path) {
  std::random_device entropy;
  for (int attempt = 0; attempt < 16; ++attempt) {
    char suffix[40];
    std::snprintf(suffix, sizeof suffix, ".tmp%d.%08x%08x", static_cast<int>(getpid()), entropy(), entropy());
    TempFile t{path + suffix, -1};
    // O_EXCL: never an existing file; O_NOFOLLOW: never through a symbolic link.
    t.fd = ::open(t.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (t.fd >= 0) return t;
    if (errno != EEXIST) throw Error(cat(path, ": cannot create ", t.path, ": ", std::strerror(errno)));
  }
  throw Error(cat(path, ": cannot create a temporary file beside it (16 names taken)"));
}

void fsync_folder_of(const std::string& path) {
  const fs::path folder = fs::path(path).parent_path();
  const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // nothing more can be done; the rename itself has happened
  ::fsync(fd);
  ::close(fd);
}

void discard(TempFile& t) {
  if (t.fd >= 0) ::close(t.fd);
  t.fd = -1;
  std::remove(t.path.c_str());
}

void sync_and_close(TempFile& t, const std::string& path) {
  int err = 0;
  if (::fsync(t.fd) != 0) err = errno;  // the data on disk before a rename makes it visible
  if (::close(t.fd) != 0 && !err) err = errno;
  t.fd = -1;
  if (err) {
    discard(t);
    throw Error(cat(path, ": writing failed: ", std::strerror(err)));
  }
}

void rename_over(TempFile& t, const std::string& path) {
  if (std::rename(t.path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    discard(t);
    throw Error(cat(path, ": writing failed: ", std::strerror(err)));
  }
  fsync_folder_of(path);  // the rename itself on disk
}

void publish(TempFile& t, const std::string& path) {
  sync_and_close(t, path);
  rename_over(t, path);
}

void write_all(TempFile& t, const void* data, size_t n, const std::string& path) {
  for (auto* c = static_cast<const char*>(data); n > 0;) {
    const ssize_t w = ::write(t.fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      discard(t);
      throw Error(cat(path, ": writing failed: ", std::strerror(err)));
    }
    c += w, n -= static_cast<size_t>(w);
  }
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  TempFile t = create_temp_beside(path);
  write_all(t, bytes.data(), bytes.size(), path);
  publish(t, path);
}

int remove_stale_temporaries(const std::string& path) {
  const fs::path p(path);
  const fs::path folder = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = p.filename().string() + ".tmp";
  std::error_code ec;
  int removed = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !e.is_regular_file(ec)) continue;
    // path.tmp<pid>.<hex>: removed only when process <pid> no longer exists.
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
    if (pid <= 0 || *end != '.' || (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace mg::serialize
