// Replacing a file so that a reader sees the old one or the complete new one, never part of one,
// whatever happens: a crash or SIGKILL at any instant, a power cut (the data and the rename are on
// disk, in that order, before the call returns), or another user of a shared --out folder who plants
// a symbolic link where the temporary file will be (its name is not predictable, and it is created
// exclusively, so the write cannot be redirected).
//
//   TempFile t = create_temp_beside(path);   // path.tmp<pid>.<random>, in path's folder
//   write(t.fd, ...);
//   publish(t, path);                        // fsync, rename over path, fsync the folder
#pragma once
#include <cstddef>
#include <string>

namespace mg::serialize {

struct TempFile {
  std::string path;
  int fd = -1;
};

// Throws mg::Error naming `path` if the temporary file cannot be created.
TempFile create_temp_beside(const std::string& path);
// Writes n bytes to t (short writes and EINTR retried); on failure the temporary file is removed and
// mg::Error thrown naming path.
void write_all(TempFile& t, const void* data, size_t n, const std::string& path);
// fsync(t.fd), close it, rename t.path to path, fsync path's folder. On failure the temporary file
// is removed and mg::Error thrown naming path; path is then untouched. publish is the two below.
void publish(TempFile& t, const std::string& path);
void sync_and_close(TempFile& t, const std::string& path);  // the data is on disk
void rename_over(TempFile& t, const std::string& path);     // and then the new name
// Closes and removes an unpublished temporary file (after a failed write).
void discard(TempFile& t);
// fsync of the folder holding `path`, so that a rename there survives a power cut.
void fsync_folder_of(const std::string& path);
// All of the above for a file held in memory: `bytes` replace path's content atomically.
void write_file_atomically(const std::string& path, const std::string& bytes);
// Removes the temporary files create_temp_beside made for `path` whose process has ended (a SIGKILL
// or a power cut in the middle of a write leaves them); returns how many.
int remove_stale_temporaries(const std::string& path);

}  // namespace mg::serialize
