// Extracting a CIFAR-10 archive (train.tar.gz / test.tar.gz of image folders) from somebody else,
// with GNU tar, only after its listing shows nothing but folders and regular files at relative
// paths without "..", within a size budget: no member can write outside the folder (through an
// absolute path, "..", or a symbolic or hard link planted by an earlier member), and no archive can
// fill the disk or take an unbounded time.
#pragma once
#include <cstdint>
#include <string>

namespace mg::cli {

struct ArchiveBudget {
  uint64_t max_bytes = uint64_t{1} << 30;  // extracted, in all (CIFAR-10's train folders: about 120 MB)
  uint64_t max_members = 200000;           // files and folders (CIFAR-10's train: 50,011)
};

// tar -tvzf, checked as above, then tar -xzf into `dir`. Throws data::DataError naming the archive
// and the first offending member.
void extract_archive(const std::string& archive, const std::string& dir, const ArchiveBudget& budget = {});

}  // namespace mg::cli
