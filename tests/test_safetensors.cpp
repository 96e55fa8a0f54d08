// safetensors: round trips, files written by the Python reference (shared/tools/safetensors_io.py),
// every class of malformed file, F16/BF16 conversion, and a corruption fuzz that must never crash.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "maxgrad/nn/serialize/safetensors.h"
#include "temp_dir.h"

namespace st = mg::safetensors;
namespace fs = std::filesystem;

namespace {

// Written by the reference: safetensors_io.save({"fc.weight": float32 [[1, -2.5, 3.25], [0, 1e-3, -7]],
// "fc.bias": float64 [0.5, -1], "half": float16 [1, -2, 2^-14, 2^-24], "step": int64 42 (shape []),
// "mask": bool [1, 0, 1], "empty": int32 zeros((0, 3))}, path, metadata={"format": "pt"})
const char kPythonA[] =                 // 459 bytes
    "\x88\x01\x00\x00\x00\x00\x00\x00"  // header length 392
    R"J({"__metadata__":{"format":"pt"},)J"
    R"J("fc.bias":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)J"
    R"J("step":{"dtype":"I64","shape":[],"data_offsets":[16,24]},)J"
    R"J("empty":{"dtype":"I32","shape":[0,3],"data_offsets":[24,24]},)J"
    R"J("fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]},)J"
    R"J("half":{"dtype":"F16","shape":[4],"data_offsets":[48,56]},)J"
    R"J("mask":{"dtype":"BOOL","shape":[3],"data_offsets":[56,59]}})J"
    "\x00\x00\x00\x00\x00\x00\xe0\x3f\x00\x00\x00\x00\x00\x00\xf0\xbf"                                  // fc.bias
    "\x2a\x00\x00\x00\x00\x00\x00\x00"                                                                  // step
    "\x00\x00\x80\x3f\x00\x00\x20\xc0\x00\x00\x50\x40\x00\x00\x00\x00\x6f\x12\x83\x3a\x00\x00\xe0\xc0"  // fc.weight
    "\x00\x3c\x00\xc0\x00\x04\x01\x00"                                                                  // half
    "\x01\x00\x01";                                                                                     // mask

// safetensors_io.save({"x": uint8 [0, 1, 2], "\u00e9": int16 [-1]}, path): a non-ASCII name, header padding.
const char kPythonB[] =  // 125 bytes
    "\x70\x00\x00\x00\x00\x00\x00\x00"
    R"J({"\u00e9":{"dtype":"I16","shape":[1],"data_offsets":[0,2]},)J"
    R"J("x":{"dtype":"U8","shape":[3],"data_offsets":[2,5]}} )J"  // one space pads the header to 112 bytes
    "\xff\xff\x00\x01\x02";

std::vector<unsigned char> bytes_of(const char* lit, size_t size_with_nul) {
  return std::vector<unsigned char>(lit, lit + size_with_nul - 1);
}

// A file with the given header text followed by data_len zero bytes.
std::vector<unsigned char> make(const std::string& header, size_t data_len) {
  std::vector<unsigned char> b(8 + header.size() + data_len, 0);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>((uint64_t(header.size()) >> (8 * i)) & 0xFF);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

// The message parse() throws for b; fails the test if it accepts b.
std::string error_of(const std::vector<unsigned char>& b) {
  try {
    st::parse(b.data(), b.size(), "bad.safetensors");
  } catch (const st::Error& e) {
    return e.what();
  }
  FAIL_CHECK("parse accepted a malformed file");
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

template <typename T> std::vector<unsigned char> raw(const std::vector<T>& v) {  // host is little-endian (x86, arm)
  std::vector<unsigned char> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

template <typename T> T value_at(const st::Entry& e, size_t i) {
  T v;
  std::memcpy(&v, e.bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

using mg::testing::TempDir;

}  // namespace

TEST_CASE("safetensors dtype names and item sizes") {
  using D = st::DType;
  for (D t : {D::F64, D::F32, D::F16, D::BF16, D::I64, D::I32, D::I16, D::I8, D::U64, D::U32, D::U16, D::U8, D::BOOL})
    CHECK(st::dtype_from_name(st::name(t)) == t);
  CHECK(st::itemsize(D::F64) == 8);
  CHECK(st::itemsize(D::BF16) == 2);
  CHECK(st::itemsize(D::BOOL) == 1);
  CHECK(std::string(st::name(D::BOOL)) == "BOOL");
  CHECK_THROWS_WITH_AS(st::dtype_from_name("F8"), doctest::Contains("unknown dtype 'F8'"), st::Error);
}

TEST_CASE("safetensors reads files written by the Python reference") {
  std::vector<unsigned char> a = bytes_of(kPythonA, sizeof kPythonA);
  REQUIRE(a.size() == 459);
  st::File f = st::parse(a.data(), a.size(), "a.safetensors");
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(f.tensors.size() == 6);
  std::vector<std::string> order;  // read() and parse() return entries in the order of their data
  for (const st::Entry& e : f.tensors) order.push_back(e.name);
  CHECK(order == std::vector<std::string>{"fc.bias", "step", "empty", "fc.weight", "half", "mask"});

  const st::Entry* w = f.find("fc.weight");
  REQUIRE(w);
  CHECK(w->dtype == st::DType::F32);
  CHECK(w->shape == std::vector<int64_t>{2, 3});
  CHECK(st::to_float32(*w) == std::vector<float>{1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f});
  CHECK(st::to_float64(*f.find("fc.bias")) == std::vector<double>{0.5, -1.0});
  CHECK(st::to_float32(*f.find("half")) ==
        std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -14), std::ldexp(1.0f, -24)});
  const st::Entry* step = f.find("step");
  CHECK(step->shape.empty());  // a scalar
  CHECK(value_at<int64_t>(*step, 0) == 42);
  CHECK(f.find("empty")->shape == std::vector<int64_t>{0, 3});
  CHECK(f.find("empty")->bytes.empty());
  CHECK(f.find("mask")->bytes == std::vector<unsigned char>{1, 0, 1});
  CHECK(f.find("nope") == nullptr);

  std::vector<unsigned char> b = bytes_of(kPythonB, sizeof kPythonB);
  st::File g = st::parse(b.data(), b.size(), "b.safetensors");
  CHECK(g.metadata.empty());
  REQUIRE(g.find("\xc3\xa9"));  // "\u00e9" in the header is UTF-8 in the name
  CHECK(value_at<int16_t>(*g.find("\xc3\xa9"), 0) == -1);
  CHECK(g.find("x")->bytes == std::vector<unsigned char>{0, 1, 2});
}

TEST_CASE("safetensors serialize matches the Python writer byte for byte") {
  for (std::vector<unsigned char> ref : {bytes_of(kPythonA, sizeof kPythonA), bytes_of(kPythonB, sizeof kPythonB)}) {
    st::File f = st::parse(ref.data(), ref.size(), "ref");
    CHECK(!f.verified);  // the reference writes no checksums: the file loads, unverified
    CHECK(st::serialize(f, st::Checksums::Omit) == ref);
  }
}

namespace {

// A file as maxgrad writes it: weights, a buffer, optimiser state, an int64 step, bools, an empty tensor.
st::File checksummed_sample() {
  st::File f;
  std::vector<float> w(64 * 24), m(64 * 24);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>(i % 97) - 0.3f, m[i] = 1e-4f * i;
  f.tensors.push_back({"fc.weight", st::DType::F32, {64, 24}, raw(w)});
  f.tensors.push_back({"bn.running_var", st::DType::F64, {5}, raw(std::vector<double>{1, 0.5, 2, 1e-3, 7})});
  f.tensors.push_back({"optimizer.exp_avg.0", st::DType::F32, {64, 24}, raw(m)});
  f.tensors.push_back({"optimizer.step", st::DType::I64, {}, raw(std::vector<int64_t>{42})});
  f.tensors.push_back({"mask", st::DType::BOOL, {3}, {1, 0, 1}});
  f.tensors.push_back({"empty", st::DType::F32, {0, 4}, {}});
  f.metadata = {{"format", "pt"}, {"step", "42"}};
  return f;
}

std::vector<unsigned char> replaced(std::vector<unsigned char> b, const std::string& from, const std::string& to) {
  REQUIRE(from.size() == to.size());  // the header keeps its length
  std::string s(b.begin(), b.end());
  size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  std::copy(to.begin(), to.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
  return b;
}

// The ChecksumError parse() throws for b; fails the test if b is accepted or fails otherwise.
std::vector<std::string> damaged_tensors(const std::vector<unsigned char>& b) {
  try {
    st::parse(b.data(), b.size(), "damaged.safetensors");
  } catch (const st::ChecksumError& e) {
    CHECK(has(e.what(), "damaged.safetensors: damaged"));
    return e.tensors;
  } catch (const st::Error& e) {
    FAIL_CHECK("not a checksum error: ", e.what());
    return {};
  }
  FAIL_CHECK("a damaged file was accepted");
  return {};
}

}  // namespace

TEST_CASE("safetensors files carry checksums that name every damaged tensor") {
  const st::File f = checksummed_sample();
  const std::vector<unsigned char> b = st::serialize(f);
  st::File g = st::parse(b.data(), b.size(), "sample");
  CHECK(g.verified);
  CHECK(g.metadata == f.metadata);  // the checksum keys are the reader's, not the caller's
  std::string header(b.begin() + 8, b.begin() + 8 + static_cast<std::ptrdiff_t>(b[0] | (b[1] << 8)));
  CHECK(has(header, R"("checksum.xxh3.fc.weight":")"));
  CHECK(has(header, R"("checksum.header.xxh3":")"));

  SUBCASE("one flipped bit anywhere in the data is found, and the tensor holding it named") {
    const size_t data_start = 8 + header.size(), data_len = b.size() - data_start;
    std::vector<std::pair<size_t, std::string>> owner;  // each tensor's first data byte, in file order
    size_t pos = 0;
    for (const st::Entry& e : g.tensors)
      if (!e.bytes.empty()) owner.emplace_back(pos, e.name), pos += e.bytes.size();
    std::vector<size_t> where;  // 50 positions spread over the data, and each tensor's first and last byte
    for (size_t k = 0; k < 50; ++k) where.push_back(k * (data_len - 1) / 49);
    for (size_t i = 0; i < owner.size(); ++i)
      where.push_back(owner[i].first), where.push_back((i + 1 < owner.size() ? owner[i + 1].first : data_len) - 1);
    std::set<std::string> seen;
    for (size_t k = 0; k < where.size(); ++k) {  // a different bit at each position
      const size_t at = where[k];
      std::vector<unsigned char> d = b;
      d[data_start + at] ^= static_cast<unsigned char>(1u << (k % 8));
      std::string name;
      for (const auto& [first, n] : owner)
        if (first <= at) name = n;
      CHECK(damaged_tensors(d) == std::vector<std::string>{name});
      seen.insert(name);
    }
    CHECK(seen.size() == 5);  // every tensor that has bytes was hit
  }
  SUBCASE("edits to the header's metadata, shapes or checksums are found") {
    CHECK(damaged_tensors(replaced(b, R"("step":"42")", R"("step":"43")")) == std::vector<std::string>{"__header__"});
    CHECK(damaged_tensors(replaced(b, "[64,24]", "[24,64]")) == std::vector<std::string>{"__header__"});
    // A tensor's checksum key renamed: the tensor has none, and the file one for a tensor it lacks.
    CHECK(damaged_tensors(replaced(b, "checksum.xxh3.mask", "checksum.xxh3.mast")) ==
          std::vector<std::string>{"mask", "mast"});
    const std::string bad = error_of(replaced(b, "checksum.xxh3.mask", "checksum.sha1.mask"));
    CHECK(has(bad, "'checksum.sha1.mask' is not a checksum this reader knows"));
  }
  SUBCASE("a file without its checksum keys loads, unverified; truncation keeps its error") {
    st::File plain = st::parse(b.data(), b.size(), "x");
    std::vector<unsigned char> p = st::serialize(plain, st::Checksums::Omit);
    CHECK(!has(std::string(p.begin(), p.end()), "checksum"));
    st::File h = st::parse(p.data(), p.size(), "plain");
    CHECK(!h.verified);
    CHECK(h.tensors.size() == f.tensors.size());
    std::vector<unsigned char> cut(b.begin(), b.end() - 10);
    CHECK(has(error_of(cut), "beyond the end of the data"));  // the format's own error, as before
  }
  SUBCASE("read() names the file; write() replaces stale checksum keys") {
    TempDir dir;
    const std::string path = (dir.path / "w.safetensors").string();
    st::File stale = f;
    stale.metadata["checksum.xxh3.fc.weight"] = "0000000000000000";
    st::write(path, stale);
    CHECK(st::read(path).verified);
    std::vector<unsigned char> d = b;
    d[d.size() - 1] ^= 0x10;  // mask's last byte
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
    CHECK_THROWS_WITH_AS(st::read(path), doctest::Contains((path + ": damaged").c_str()), st::ChecksumError);
    CHECK_THROWS_WITH_AS(st::read(path), doctest::Contains("1 of 6 tensors fail: 'mask'"), st::ChecksumError);
  }
}

TEST_CASE("safetensors round trip through a file") {
  st::File f;
  f.tensors.push_back({"w", st::DType::F64, {2, 3}, raw(std::vector<double>{1, 2, 3, -4, 5.5, 1e300})});
  f.tensors.push_back({"scalar", st::DType::F32, {}, raw(std::vector<float>{3.5f})});
  f.tensors.push_back({"bf", st::DType::BF16, {2}, raw(std::vector<uint16_t>{0x3F80, 0xC000})});
  f.tensors.push_back({"none", st::DType::I8, {0}, {}});
  f.tensors.push_back({"none2", st::DType::U16, {2, 0, 3}, {}});
  f.tensors.push_back({"flag", st::DType::BOOL, {1}, {1}});
  f.tensors.push_back({"big", st::DType::U64, {2}, raw(std::vector<uint64_t>{0, UINT64_MAX})});
  f.tensors.push_back({"i", st::DType::I32, {1, 1, 1}, raw(std::vector<int32_t>{-7})});
  f.tensors.push_back({"\xe6\x97\xa5\xe6\x9c\xac/\"q\"\\\n", st::DType::U8, {1}, {9}});  // "日本/"q"\<newline>"
  f.tensors.push_back({"\xf0\x9f\x98\x80", st::DType::I16, {1}, raw(std::vector<int16_t>{-2})});  // U+1F600
  f.metadata = {{"format", "mg"}, {"note", "tab\tquote\" \xc3\xa9"}};

  TempDir dir;
  std::string path = (dir.path / "m.safetensors").string();
  st::write(path, f);
  st::write(path, f);  // overwriting is fine: the rename replaces the old file
  st::File g = st::read(path);
  CHECK(g.metadata == f.metadata);
  REQUIRE(g.tensors.size() == f.tensors.size());
  for (const st::Entry& e : f.tensors) {
    INFO(e.name);
    const st::Entry* r = g.find(e.name);
    REQUIRE(r);
    CHECK(r->dtype == e.dtype);
    CHECK(r->shape == e.shape);
    CHECK(r->bytes == e.bytes);
  }
  CHECK(st::to_float32(*g.find("bf")) == std::vector<float>{1.0f, -2.0f});
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);  // no temp file left

  std::vector<unsigned char> b = st::serialize(f);
  CHECK(b.size() == fs::file_size(path));
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | b[i];
  CHECK(hlen % 8 == 0);
  size_t at = 8 + hlen;  // the writer lays out by decreasing item size, so each tensor is aligned
  for (const st::Entry& e : st::parse(b.data(), b.size(), "mem").tensors) {
    CHECK(at % st::itemsize(e.dtype) == 0);
    at += e.bytes.size();
  }
  st::File empty;  // no tensors at all is a valid file
  CHECK(st::parse(st::serialize(empty).data(), st::serialize(empty).size(), "e").tensors.empty());
}

TEST_CASE("safetensors writer rejects what it cannot write") {
  auto err = [](st::Entry e) {
    st::File f;
    f.tensors = {e};
    try {
      st::serialize(f);
    } catch (const st::Error& x) {
      return std::string(x.what());
    }
    return std::string("accepted");
  };
  CHECK(has(err({"w", st::DType::F32, {2, 3}, std::vector<unsigned char>(20)}),
            "'w' (F32, shape [2, 3]) does not match its 20 bytes"));
  CHECK(has(err({"w", st::DType::F32, {-1}, {}}), "shape [-1]"));
  CHECK(has(err({"w", st::DType::U8, {1LL << 40, 1LL << 40}, {}}), "does not match"));  // would overflow
  CHECK(has(err({"", st::DType::U8, {}, {1}}), "cannot be a tensor name"));
  CHECK(has(err({"__metadata__", st::DType::U8, {}, {1}}), "cannot be a tensor name"));
  CHECK(has(err({"\xff", st::DType::U8, {}, {1}}), "not valid UTF-8"));
  st::File dup;
  dup.tensors = {{"a", st::DType::U8, {}, {1}}, {"a", st::DType::U8, {}, {2}}};
  CHECK_THROWS_WITH_AS(st::serialize(dup), doctest::Contains("duplicate tensor name 'a'"), st::Error);
  CHECK_THROWS_WITH_AS(st::write("/nonexistent-dir/x.safetensors", dup),
                       doctest::Contains("/nonexistent-dir/x.safetensors"), st::Error);
}

TEST_CASE("safetensors rejects every class of malformed file, naming the file and the problem") {
  const std::string e8 = R"({"dtype":"F64","shape":[1],"data_offsets":[0,8]})";
  struct Bad {
    const char* why;
    std::vector<unsigned char> file;
    std::vector<std::string> expect;  // substrings of the message, besides the file name
  };
  std::vector<unsigned char> huge = make("{}", 0), past = make("{}", 0);
  huge[3] = 0x10;  // 2^24 * 16 = 256 MiB
  past[0] = 100;
  std::string zeros = "0";
  for (int i = 1; i < 600000; ++i) zeros += ",0";
  const Bad cases[] = {
      {"truncated", {1, 2, 3}, {"file is 3 bytes, too short"}},
      {"header length over the cap", huge, {"header length 268435458 exceeds the 16777216-byte limit"}},
      // 600K values in a 1.2 MB header: parsed, they would take 66 MB (110 bytes each).
      {"too many values", make(R"({"__metadata__":null,"a":[)" + zeros + "]}", 0),
       {"more than 524288 values"}},
      {"too many dimensions", make(R"({"x":{"dtype":"F64","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,8]}})", 8),
       {"has 17 dimensions; at most 16"}},
      {"header length past the end", past, {"header length 100 runs past the end of the file (10 bytes)"}},
      {"not JSON", make("{not json", 0), {"header is not well-formed JSON"}},
      {"trailing comma", make(R"({"x":)" + e8 + ",}", 8), {"not well-formed JSON"}},
      {"garbage after", make("{} x", 0), {"unexpected data after the JSON object"}},
      {"not an object", make("[1,2]", 0), {"does not start with '{'"}},
      {"bad UTF-8", make("{\"\xc3\"}", 0), {"not valid UTF-8"}},
      {"lone surrogate", make(R"({"\ud800":1})", 0), {"unpaired surrogate"}},
      {"control character", make("{\"a\tb\":1}", 0), {"control character"}},
      {"nesting bomb", make("{\"x\":" + std::string(100, '[') + std::string(100, ']') + "}", 0), {"nested deeper"}},
      {"entry not an object", make(R"({"x":[1]})", 0), {"entry 'x' is not an object"}},
      {"unknown dtype",
       make(R"({"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,8]}})", 8),
       {"entry 'x' has unsupported dtype 'Q7' (supported: F64, F32"}},
      {"missing field", make(R"({"x":{"dtype":"F64","shape":[1]}})", 8), {"entry 'x' lacks data_offsets"}},
      {"negative dim",
       make(R"({"x":{"dtype":"F64","shape":[-1],"data_offsets":[0,8]}})", 8),
       {"entry 'x' has invalid shape '[-1]'"}},
      {"fractional dim", make(R"({"x":{"dtype":"F64","shape":[1.0],"data_offsets":[0,8]}})", 8), {"invalid shape"}},
      {"boolean dim", make(R"({"x":{"dtype":"F64","shape":[true],"data_offsets":[0,8]}})", 8), {"invalid shape"}},
      {"dim past int64",
       make(R"({"x":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}})", 8),
       {"invalid shape"}},
      {"three offsets",
       make(R"({"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8,8]}})", 8),
       {"entry 'x' has invalid data_offsets"}},
      {"end before begin",
       make(R"({"x":{"dtype":"F64","shape":[0],"data_offsets":[8,0]}})", 8),
       {"'x'", "end < begin"}},
      {"offsets outside the buffer",
       make(R"({"x":{"dtype":"F64","shape":[1],"data_offsets":[0,16]}})", 8),
       {"'x'", "beyond the end of the data (8 bytes"}},
      {"size mismatch",
       make(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", 8),
       {"entry 'x' (F64, shape [2]) needs 16 bytes, but data_offsets [0, 8] span 8"}},
      {"more elements than the file",
       make(R"({"x":{"dtype":"F64","shape":[1099511627776,1048576],"data_offsets":[0,8]}})", 8),
       {"'x'", "needs 9223372036854775808 bytes"}},
      {"element count overflow",
       make(R"({"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
       {"entry 'x' (F64, shape [4294967296, 4294967296]) needs more than 2^64 bytes"}},
      {"overlap",
       make(R"({"x":)" + e8 + R"(,"y":)" + e8 + "}", 16),
       {"starts at 0 but the previous data ends at 8", "overlaps"}},
      {"gap",
       make(R"({"x":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})", 16),
       {"entry 'x'", "leaves a gap of 8 bytes"}},
      {"trailing data", make(R"({"x":)" + e8 + "}", 12), {"the tensors cover 8 bytes but the file holds 12"}},
      {"duplicate name", make(R"({"x":)" + e8 + R"(,"x":)" + e8 + "}", 8), {"duplicate tensor name 'x'"}},
      {"duplicate field",
       make(R"({"x":{"dtype":"F64","dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8),
       {"entry 'x' has a duplicate field 'dtype'"}},
      {"metadata not strings",
       make(R"({"__metadata__":{"a":1},"x":)" + e8 + "}", 8),
       {"__metadata__ must map distinct keys to strings,"}},
      {"metadata duplicate key",
       make(R"({"__metadata__":{"a":"1","a":"2"}})", 0),
       {"__metadata__ must map distinct keys to strings,"}},
  };
  for (const Bad& c : cases) {
    INFO(std::string(c.why));
    std::string msg = error_of(c.file);
    INFO(msg);
    CHECK(has(msg, "bad.safetensors: "));
    for (const std::string& part : c.expect) CHECK(has(msg, part));
  }
}

TEST_CASE("safetensors accepts what the reference accepts") {
  const std::string e8 = R"({"dtype":"F64","shape":[1],"data_offsets":[0,8]})";
  auto ok = [](const std::vector<unsigned char>& b) { return st::parse(b.data(), b.size(), "good"); };
  CHECK(ok(make("{}", 0)).tensors.empty());
  CHECK(ok(make(R"({"x":)" + e8 + "}   \n\t ", 8)).tensors.size() == 1);  // trailing whitespace
  CHECK(ok(make("{ \"x\" :\n " + e8 + " }", 8)).find("x"));               // whitespace between tokens
  CHECK(ok(make(R"({"x":{"extra":[{}],"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8)).find("x"));
  CHECK(ok(make(R"({"__metadata__":null,"x":)" + e8 + "}", 8)).metadata.empty());
  CHECK(ok(make(R"({"a\/b\u00e9\ud83d\ude00":{"dtype":"U8","shape":[-0],"data_offsets":[0,0]}})", 0))
            .find("a/b\xc3\xa9\xf0\x9f\x98\x80"));
  // Header order need not be data order; zero-size tensors may sit anywhere, even at the same offset.
  st::File f = ok(make(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"z":{"dtype":"U8","shape":[0],)"
                       R"("data_offsets":[1,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                       3));
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.tensors[0].name == "a");
  CHECK(f.tensors[1].name == "z");
  CHECK(f.tensors[2].name == "b");
}

TEST_CASE("safetensors read() names the path in its errors") {
  TempDir dir;
  std::string path = (dir.path / "cut.safetensors").string();
  std::ofstream(path, std::ios::binary).write(kPythonA, 100);  // a download cut short
  CHECK_THROWS_WITH_AS(st::read(path), doctest::Contains((path + ": header length 392 runs past the end").c_str()),
                       st::Error);
  CHECK_THROWS_WITH_AS(st::read(path + ".missing"), doctest::Contains((path + ".missing: cannot open").c_str()),
                       st::Error);
  CHECK_THROWS_WITH_AS(st::read(dir.path.string()), doctest::Contains("not a regular file"), st::Error);
  std::ofstream(path, std::ios::binary).write(kPythonA, sizeof kPythonA - 1);
  CHECK(st::read(path).tensors.size() == 6);
}

TEST_CASE("safetensors F16 and BF16 conversion") {
  struct Case {
    uint16_t bits;
    float value;
  };
  const Case f16[] = {{0x0000, 0.0f},
                      {0x3C00, 1.0f},
                      {0xC000, -2.0f},
                      {0x3555, 0.333251953125f},
                      {0x7BFF, 65504.0f},
                      {0x0400, std::ldexp(1.0f, -14)},  // min normal
                      {0x0001, std::ldexp(1.0f, -24)},
                      {0x03FF, 1023 * std::ldexp(1.0f, -24)},  // subnormals
                      {0x8001, -std::ldexp(1.0f, -24)},
                      {0x7C00, INFINITY},
                      {0xFC00, -INFINITY}};
  for (const Case& c : f16) {
    INFO(c.bits);
    CHECK(st::f16_to_float(c.bits) == c.value);
  }
  CHECK(std::signbit(st::f16_to_float(0x8000)));
  CHECK(std::isnan(st::f16_to_float(0x7E00)));
  CHECK(std::isnan(st::f16_to_float(0xFC01)));
  bool increasing = true;  // across subnormals, normals and up to inf, with no jump at the boundaries
  for (uint16_t h = 0; h < 0x7C00; ++h) increasing = increasing && st::f16_to_float(h) < st::f16_to_float(h + 1);
  CHECK(increasing);

  const Case bf16[] = {{0x3F80, 1.0f},      {0xC000, -2.0f},
                       {0x4049, 3.140625f}, {0x7F80, INFINITY},
                       {0xFF80, -INFINITY}, {0x0001, std::ldexp(1.0f, -133)}};  // smallest subnormal
  for (const Case& c : bf16) CHECK(st::bf16_to_float(c.bits) == c.value);
  CHECK(std::isnan(st::bf16_to_float(0x7FC0)));

  st::Entry h{"h", st::DType::F16, {3}, raw(std::vector<uint16_t>{0x3C00, 0x7C00, 0x0001})};
  CHECK(st::to_float64(h) == std::vector<double>{1.0, INFINITY, std::ldexp(1.0, -24)});
  st::Entry d{"d", st::DType::F64, {}, raw(std::vector<double>{0.1})};
  CHECK(st::to_float32(d) == std::vector<float>{0.1f});  // rounded once, to nearest
  st::Entry i{"ids", st::DType::I32, {1}, raw(std::vector<int32_t>{1})};
  CHECK_THROWS_WITH_AS(st::to_float32(i), doctest::Contains("'ids' has dtype I32; only F16, BF16, F32 and F64"),
                       st::Error);
  st::Entry short_entry{"s", st::DType::F32, {2}, raw(std::vector<float>{1})};
  CHECK_THROWS_AS(st::to_float32(short_entry), st::Error);
}

TEST_CASE("safetensors corrupt files throw Error and never crash") {
  std::vector<unsigned char> ref = bytes_of(kPythonA, sizeof kPythonA);
  size_t accepted = 0;
  auto attempt = [&](const std::vector<unsigned char>& b) {
    try {
      st::File f = st::parse(b.data(), b.size(), "fuzz");
      std::vector<unsigned char> again = st::serialize(f);  // whatever is accepted must be writable and re-readable
      CHECK(st::parse(again.data(), again.size(), "again").tensors.size() == f.tensors.size());
      ++accepted;
    } catch (const st::Error&) {
    }
  };
  for (size_t n = 0; n < ref.size(); ++n) attempt(std::vector<unsigned char>(ref.begin(), ref.begin() + n));
  for (size_t i = 0; i < ref.size(); ++i)
    for (unsigned char v : {0x00, 0x01, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0x80, 0xff}) {
      std::vector<unsigned char> b = ref;
      b[i] = v;
      attempt(b);
    }
  uint64_t rng = 12345;  // fixed-seed LCG: reproducible multi-byte corruption
  for (int k = 0; k < 3000; ++k) {
    std::vector<unsigned char> b = ref;
    for (int j = 0; j < 3; ++j) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      b[(rng >> 33) % b.size()] = static_cast<unsigned char>(rng >> 20);
    }
    attempt(b);
  }
  CHECK(accepted > 0);  // flips inside data bytes leave a valid file
}
