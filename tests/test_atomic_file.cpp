// nn/serialize/atomic_file.h: temporary files at unpredictable names, created exclusively; the
// leftovers of a killed writer removed, and nobody else's.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "maxgrad/core/error.h"
#include "maxgrad/nn/serialize/atomic_file.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mg::testing::TempDir;
using namespace mg::serialize;

namespace {
std::string read_all(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

TEST_CASE("create_temp_beside: a fresh name each time, never an existing file or a link") {
  TempDir dir;
  const std::string target = dir / "last.safetensors";
  TempFile a = create_temp_beside(target), b = create_temp_beside(target);
  CHECK(a.path != b.path);
  CHECK(a.path.rfind(target + ".tmp" + std::to_string(getpid()) + ".", 0) == 0);
  REQUIRE(::write(a.fd, "new", 3) == 3);
  publish(a, target);
  CHECK(read_all(target) == "new");
  CHECK(!fs::exists(a.path));
  discard(b);
  CHECK(!fs::exists(b.path));
  // The folder holds only the published file.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  CHECK_THROWS_AS(create_temp_beside(dir / "no/such/folder/x"), mg::Error);
}

TEST_CASE("remove_stale_temporaries: only a dead writer's temporary files of that very file") {
  TempDir dir;
  const pid_t child = fork();
  if (child == 0) _exit(0);
  REQUIRE(child > 0);
  REQUIRE(waitpid(child, nullptr, 0) == child);  // now a pid that no process has
  const std::string target = dir / "last.safetensors";
  const std::string dead = target + ".tmp" + std::to_string(child) + ".0123abcd";
  const std::string alive = target + ".tmp" + std::to_string(getpid()) + ".0123abcd";
  const std::string other = dir / ("prev.safetensors.tmp" + std::to_string(child) + ".0123abcd");
  const std::string unrelated = target + ".tmpnotapid";
  for (const std::string& f : {dead, alive, other, unrelated}) std::ofstream(f) << "x";
  CHECK(remove_stale_temporaries(target) == 1);
  CHECK(!fs::exists(dead));
  CHECK(fs::exists(alive));
  CHECK(fs::exists(other));
  CHECK(fs::exists(unrelated));
}
