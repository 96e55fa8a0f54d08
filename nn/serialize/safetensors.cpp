// safetensors reading and writing; see safetensors.h for the layout. The checks mirror
// shared/tools/safetensors_io.py (itself mirroring huggingface/safetensors), so a file one accepts
// the other accepts, and their messages read alike.
#include "maxgrad/nn/serialize/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "maxgrad/core/runtime/crash_point.h"
#include "maxgrad/core/utf8.h"
#include "maxgrad/nn/serialize/atomic_file.h"
#include "maxgrad/nn/serialize/xxh3.h"

namespace mg::safetensors {
namespace {

// What a header may cost. A checkpoint of torchvision's maxvit_t with AdamW's state has a header of
// about 0.3 MB and 40K JSON values; the caps leave room for 50 times that. Parsing costs at most the
// header plus kMaxValues parsed values (about 110 bytes each): under 80 MB in all, where the
// reference implementation's 100 MB header of `[0,0,...]` would cost 5.6 GB of parsed values.
constexpr uint64_t kMaxHeader = 16ull << 20;
constexpr size_t kMaxValues = size_t{1} << 19;
constexpr int kMaxDepth = 64;    // bounds the parser's recursion; real headers nest 3 deep
constexpr size_t kMaxDims = 16;  // a tensor's dimensions (PyTorch's own tensors stop at 25)
constexpr const char* kSupported = "F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL";

struct DTypeInfo {
  DType t;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {  // in enum order
    {DType::F64, "F64", 8},  {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8},  {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U64, "U64", 8},  {DType::U32, "U32", 4}, {DType::U16, "U16", 2}, {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1}};

const DTypeInfo* find_dtype(const std::string& s) {
  for (const DTypeInfo& d : kDTypes)
    if (s == d.name) return &d;
  return nullptr;
}

template <typename... A> std::string cat(const A&... a) {
  std::ostringstream o;
  (o << ... << a);
  return o.str();
}

// Names and header text come from untrusted files: show control bytes escaped and cut long text short.
std::string quote(const std::string& s, size_t max = 200) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    char buf[8];
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += c < 0x20 || c == 0x7f ? (std::snprintf(buf, sizeof buf, "\\x%02x", c), buf) : std::string(1, s[i]);
  }
  return out + (s.size() > max ? "...'" : "'");
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Byte size of a shape, or false if a dim is negative or the size exceeds `cap`; checking before
// each multiply keeps a hostile shape like [2^40, 2^40] from overflowing.
bool byte_size(const std::vector<int64_t>& shape, size_t item, uint64_t cap, uint64_t& out) {
  out = std::find(shape.begin(), shape.end(), 0) == shape.end() ? item : 0;
  for (int64_t d : shape) {
    if (d < 0 || (out && out > cap / static_cast<uint64_t>(d))) return false;
    out *= static_cast<uint64_t>(d);
  }
  return out <= cap;
}

uint64_t load_le(const unsigned char* p, size_t n) {  // byte by byte, so it works on any host
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

template <typename F, typename Bits> F from_bits(Bits b) {
  static_assert(sizeof(F) == sizeof(Bits), "same width");
  F v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

void append_utf8(std::string& out, uint32_t cp) {
  static const unsigned char lead[] = {0x00, 0xC0, 0xE0, 0xF0};
  int n = cp < 0x80 ? 0 : cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;  // continuation bytes
  out += static_cast<char>(lead[n] | (cp >> (6 * n)));
  for (int k = n - 1; k >= 0; --k) out += static_cast<char>(0x80 | ((cp >> (6 * k)) & 0x3F));
}

// A parsed JSON value. Objects keep members in file order, duplicates included, so the header
// checks can name a duplicate; [begin, end) locates the value's text for error messages.
struct Json {
  enum Kind { Null, Scalar, Uint, String, Array, Object } kind = Null;  // Scalar: a bool or other number
  int64_t integer = 0;  // Uint: an integer literal in [0, 2^63), the only numbers a header may hold
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
  size_t begin = 0, end = 0;
};

// Strict RFC 8259: no comments, trailing commas, NaN or lone surrogates.
class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  Json document() {
    Json v = value(0);
    ws();  // the writer pads with spaces; any JSON whitespace is allowed, as json.loads does
    if (i_ != s_.size()) fail("unexpected data after the JSON object");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(cat(what_, ": header is not well-formed JSON: ", why, " at byte ", i_, " of the header"));
  }
  bool at(const char* set) const { return i_ < s_.size() && std::strchr(set, s_[i_]) && s_[i_] != '\0'; }
  bool eat(char c) { return i_ < s_.size() && s_[i_] == c ? (++i_, true) : false; }
  void ws() {
    while (at(" \t\n\r")) ++i_;
  }
  void expect(char c) {
    if (!eat(c)) fail(cat("expected '", c, "'"));
  }
  size_t digits() {
    size_t n = 0;
    for (; at("0123456789"); ++n) ++i_;
    return n;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail(cat("values nested deeper than ", kMaxDepth, " levels"));
    if (++values_ > kMaxValues) fail(cat("more than ", kMaxValues, " values (a header's budget)"));
    ws();
    Json v;
    v.begin = i_;
    if (eat('{')) {
      v.kind = Json::Object;
      if (ws(), !eat('}')) {
        do {
          ws();
          if (!at("\"")) fail("expected a string key");
          std::string key = string();
          ws(), expect(':');
          v.members.emplace_back(std::move(key), value(depth + 1));
        } while (ws(), eat(','));
        expect('}');
      }
    } else if (eat('[')) {
      v.kind = Json::Array;
      if (ws(), !eat(']')) {
        do v.items.push_back(value(depth + 1));
        while (ws(), eat(','));
        expect(']');
      }
    } else if (at("\"")) {
      v.kind = Json::String, v.str = string();
    } else if (s_.compare(i_, 4, "null") == 0) {
      v.kind = Json::Null, i_ += 4;
    } else if (s_.compare(i_, 4, "true") == 0 || s_.compare(i_, 5, "false") == 0) {
      v.kind = Json::Scalar, i_ += s_[i_] == 't' ? 4 : 5;
    } else {
      number(v);
    }
    v.end = i_;
    return v;
  }

  void number(Json& v) {  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    bool neg = eat('-');
    size_t start = i_;
    if (!at("0123456789")) fail(i_ < s_.size() ? "unexpected character " + quote(s_.substr(i_, 1)) : "unexpected end");
    if (!eat('0')) digits();
    std::string integer = s_.substr(start, i_ - start);
    bool integral = true;
    if (eat('.')) {
      integral = false;
      if (!digits()) fail("expected a digit after '.'");
    }
    if (at("eE")) {
      ++i_, integral = false;
      if (!eat('+')) eat('-');
      if (!digits()) fail("expected a digit in the exponent");
    }
    // Without leading zeros, comparing lengths then text compares values. "-0" is 0, as in Python.
    bool fits = integer.size() < 19 || (integer.size() == 19 && integer <= "9223372036854775807");
    v.kind = integral && fits && (!neg || integer == "0") ? Json::Uint : Json::Scalar;
    if (v.kind == Json::Uint) v.integer = std::stoll(integer);
  }

  uint32_t hex4() {
    std::string h = s_.substr(i_, 4);
    if (h.size() != 4 || h.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) fail("bad \\u escape");
    i_ += 4;
    return static_cast<uint32_t>(std::stoul(h, nullptr, 16));
  }

  std::string string() {  // at the opening quote; the header was checked to be UTF-8 before parsing
    static const std::string from = "\"\\/bfnrt", to = "\"\\/\b\f\n\r\t";
    std::string out;
    for (++i_;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      size_t k = i_ < s_.size() ? from.find(s_[i_]) : std::string::npos;
      if (k != std::string::npos) {
        out += to[k], ++i_;
        continue;
      }
      if (!eat('u')) fail("bad escape in a string");
      uint32_t cp = hex4(), lo = 0;
      bool high = cp >= 0xD800 && cp <= 0xDBFF;
      if (high && eat('\\') && eat('u')) lo = hex4();
      if (high && lo >= 0xDC00 && lo <= 0xDFFF)
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      else if (cp >= 0xD800 && cp <= 0xDFFF)
        fail("unpaired surrogate in a \\u escape");
      append_utf8(out, cp);
    }
  }

  const std::string& s_;
  const std::string& what_;
  size_t i_ = 0;
  size_t values_ = 0;  // parsed so far, against kMaxValues
};

// ---- integrity: see safetensors.h ----
const std::string kTensorKey = "checksum.xxh3.", kHeaderKey = "checksum.header.xxh3";

bool is_checksum_key(const std::string& k) { return k.compare(0, std::strlen(kChecksumPrefix), kChecksumPrefix) == 0; }

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string tensor_digest(const Entry& e) {
  return hex64(e.bytes.empty() ? xxh3_64(nullptr, 0) : xxh3_64(e.bytes.data(), e.bytes.size()));
}

// What the tensor checksums do not cover: the metadata (checksum keys aside) and each tensor's name,
// dtype and shape, in name order, every string length-prefixed so no two headers give the same text.
// The data offsets are left out: a wrong one moves bytes, which the tensor checksums see.
std::string header_digest(const std::map<std::string, std::string>& metadata, const std::vector<const Entry*>& order) {
  std::string text;
  auto put = [&text](const std::string& s) { text += cat(s.size(), ":", s, ";"); };
  for (const auto& [k, v] : metadata)
    if (!is_checksum_key(k)) put(k), put(v);
  std::vector<const Entry*> by_name = order;
  std::sort(by_name.begin(), by_name.end(), [](const Entry* a, const Entry* b) { return a->name < b->name; });
  for (const Entry* e : by_name) put(e->name), put(name(e->dtype)), put(shape_str(e->shape));
  return hex64(xxh3_64(text.data(), text.size()));
}

// Takes the checksum keys out of f.metadata and checks f against them.
void verify(File& f, const std::string& what) {
  std::map<std::string, std::string> sums;
  for (auto it = f.metadata.begin(); it != f.metadata.end();)
    if (is_checksum_key(it->first)) {
      sums.insert(*it);
      it = f.metadata.erase(it);
    } else {
      ++it;
    }
  f.verified = false;
  if (sums.empty()) return;
  std::vector<const Entry*> entries;
  std::set<std::string> names;
  for (const Entry& e : f.tensors) entries.push_back(&e), names.insert(e.name);
  std::vector<std::string> bad, absent;  // failing tensors; checksums of tensors the file does not hold
  for (const auto& [k, v] : sums) {
    if (k == kHeaderKey) continue;
    if (k.compare(0, kTensorKey.size(), kTensorKey) != 0)
      throw Error(cat(what, ": __metadata__ key ", quote(k), " is not a checksum this reader knows (", kTensorKey,
                      "NAME for each tensor, ", kHeaderKey, ")"));
    if (!names.count(k.substr(kTensorKey.size()))) absent.push_back(k.substr(kTensorKey.size()));
  }
  size_t failed = 0;
  for (const Entry* e : entries) {
    auto it = sums.find(kTensorKey + e->name);
    if (it == sums.end() || it->second != tensor_digest(*e)) bad.push_back(e->name), ++failed;
  }
  auto h = sums.find(kHeaderKey);
  const bool header_bad = h == sums.end() || h->second != header_digest(f.metadata, entries);
  if (bad.empty() && absent.empty() && !header_bad) {
    f.verified = true;
    return;
  }
  std::string msg = cat(what, ": damaged: its content does not match the checksums written with it");
  if (!bad.empty()) {
    msg += cat("; ", failed, " of ", entries.size(), " tensors fail: ");
    for (size_t i = 0; i < bad.size() && i < 20; ++i) msg += (i ? ", " : "") + quote(bad[i]);
    if (bad.size() > 20) msg += cat(" and ", bad.size() - 20, " more");
  }
  if (!absent.empty())
    msg += cat("; it has checksums of ", absent.size(), " tensor(s) it does not hold, such as ", quote(absent[0]));
  if (header_bad) msg += "; the header (tensor names, dtypes, shapes, metadata) does not match its checksum";
  msg += " (a file without any checksum key loads, unverified)";
  if (header_bad) bad.push_back("__header__");
  bad.insert(bad.end(), absent.begin(), absent.end());
  throw ChecksumError(msg, std::move(bad));
}

void note_unverified(const std::string& path) {  // once per file and process
  static std::mutex mutex;
  static std::set<std::string> noted;
  std::lock_guard<std::mutex> lock(mutex);
  if (noted.insert(path).second)
    std::fprintf(stderr, "note: %s has no checksums (written by PyTorch or an older maxgrad): loaded unverified\n",
                 path.c_str());
}

uint64_t check_prefix(const unsigned char* p, size_t got, uint64_t size, const std::string& what) {
  if (got < 8) throw Error(cat(what, ": file is ", size, " bytes, too short for the 8-byte header length"));
  uint64_t n = load_le(p, 8);
  if (n > kMaxHeader) throw Error(cat(what, ": header length ", n, " exceeds the ", kMaxHeader, "-byte limit"));
  if (n > size - 8) throw Error(cat(what, ": header length ", n, " runs past the end of the file (", size, " bytes)"));
  return n;
}

struct Layout {
  File file;                         // entries with empty bytes, in the order of their data
  std::vector<uint64_t> begin, end;  // each entry's byte range, relative to the start of the data
};

// Parses and checks the header of a file whose data (after the header) is data_len bytes.
Layout parse_header(const std::string& h, uint64_t data_len, const std::string& what) {
  if (!valid_utf8(h)) throw Error(what + ": header is not valid UTF-8");
  if (h.empty() || h[0] != '{')
    throw Error(cat(what, ": header does not start with '{' (got ", quote(h, 20), "); not a safetensors file?"));
  Json root = JsonParser(h, what).document();
  auto src = [&](const Json& v) { return quote(h.substr(v.begin, v.end - v.begin)); };

  struct Placed {
    Entry e;
    uint64_t begin, end;
  };
  std::vector<Placed> placed;
  std::set<std::string> seen;
  Layout lay;
  for (const auto& [key, v] : root.members) {
    if (!seen.insert(key).second) throw Error(cat(what, ": header has duplicate tensor name ", quote(key)));
    if (key == "__metadata__") {
      if (v.kind == Json::Null) continue;  // json.loads and serde both read null as no metadata
      bool ok = v.kind == Json::Object;
      for (const auto& [k, s] : v.members)
        ok = ok && s.kind == Json::String && lay.file.metadata.emplace(k, s.str).second;
      if (!ok) throw Error(cat(what, ": __metadata__ must map distinct keys to strings, got ", src(v)));
      continue;
    }
    std::string where = cat(what, ": entry ", quote(key));
    if (v.kind != Json::Object) throw Error(where + " is not an object");
    const Json *dtype = nullptr, *shape = nullptr, *offs = nullptr;
    for (const auto& [k, f] : v.members) {
      const Json** slot = k == "dtype" ? &dtype : k == "shape" ? &shape : k == "data_offsets" ? &offs : nullptr;
      if (slot && *slot) throw Error(cat(where, " has a duplicate field ", quote(k)));
      if (slot) *slot = &f;  // other fields are ignored, as the reference implementation does
    }
    if (!dtype || !shape || !offs)
      throw Error(cat(where, " lacks", dtype ? "" : " dtype", shape ? "" : " shape", offs ? "" : " data_offsets"));
    const DTypeInfo* dt = dtype->kind == Json::String ? find_dtype(dtype->str) : nullptr;
    std::string shown = dtype->kind == Json::String ? quote(dtype->str) : src(*dtype);
    if (!dt) throw Error(cat(where, " has unsupported dtype ", shown, " (supported: ", kSupported, ")"));
    Placed p{Entry{key, dt->t, {}, {}}, 0, 0};
    if (shape->kind == Json::Array && shape->items.size() > kMaxDims)
      throw Error(cat(where, " has ", shape->items.size(), " dimensions; at most ", kMaxDims, " are read"));
    bool ok = shape->kind == Json::Array;
    for (const Json& d : shape->items) {
      ok = ok && d.kind == Json::Uint;
      p.e.shape.push_back(d.integer);
    }
    if (!ok) throw Error(cat(where, " has invalid shape ", src(*shape)));
    const std::vector<Json>& o = offs->items;
    if (offs->kind != Json::Array || o.size() != 2 || o[0].kind != Json::Uint || o[1].kind != Json::Uint)
      throw Error(cat(where, " has invalid data_offsets ", src(*offs)));
    p.begin = static_cast<uint64_t>(o[0].integer), p.end = static_cast<uint64_t>(o[1].integer);
    std::string range = cat("[", p.begin, ", ", p.end, "]");
    if (p.end < p.begin) throw Error(cat(where, " has data_offsets ", range, " with end < begin"));
    if (p.end > data_len)
      throw Error(cat(where, " has data_offsets ", range, " beyond the end of the data (", data_len,
                      " bytes after the header)"));
    std::string desc = cat(where, " (", dt->name, ", shape ", shape_str(p.e.shape), ") needs ");
    uint64_t want = 0;
    if (!byte_size(p.e.shape, dt->size, UINT64_MAX, want)) throw Error(desc + "more than 2^64 bytes (overflow)");
    if (p.end - p.begin != want)
      throw Error(cat(desc, want, " bytes, but data_offsets ", range, " span ", p.end - p.begin));
    placed.push_back(std::move(p));
  }
  // The byte ranges must tile [0, data_len) exactly (the reference implementation's rule).
  std::stable_sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (Placed& p : placed) {
    if (p.begin != pos)
      throw Error(cat(what, ": entry ", quote(p.e.name), " starts at ", p.begin, " but the previous data ends at ", pos,
                      ": it ",
                      p.begin < pos ? "overlaps the previous tensor" : cat("leaves a gap of ", p.begin - pos, " bytes"),
                      " (safetensors requires contiguous data)"));
    pos = p.end;
    lay.begin.push_back(p.begin);
    lay.end.push_back(p.end);
    lay.file.tensors.push_back(std::move(p.e));
  }
  if (pos != data_len)
    throw Error(cat(what, ": the tensors cover ", pos, " bytes but the file holds ", data_len,
                    " bytes after the header (trailing or missing data)"));
  return lay;
}

// Throws unless e.bytes holds exactly its shape's worth of data.
void check_entry_size(const Entry& e, const std::string& what) {
  uint64_t want = 0;
  if (!byte_size(e.shape, itemsize(e.dtype), e.bytes.size(), want) || want != e.bytes.size())
    throw Error(cat(what, ": entry ", quote(e.name), " (", name(e.dtype), ", shape ", shape_str(e.shape),
                    ") does not match its ", e.bytes.size(), " bytes"));
}

// A JSON string as Python's json.dumps writes it (ensure_ascii), so our files match the reference byte for byte.
void put_string(std::string& out, const std::string& s, const std::string& what, const char* role) {
  if (!valid_utf8(s)) throw Error(cat(what, ": ", role, " ", quote(s), " is not valid UTF-8"));
  static const std::string plain = "\"\\\n\r\t\b\f", escaped = "\"\\nrtbf";
  auto hex = [&out](uint32_t u) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
    out += buf;
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto cp = static_cast<uint32_t>(next_utf8(s, i));  // valid: checked above
    size_t k = cp < 0x80 ? plain.find(static_cast<char>(cp)) : std::string::npos;
    if (k != std::string::npos) {
      out += {'\\', escaped[k]};
    } else if (cp >= 0x20 && cp < 0x7f) {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      hex(cp);
    } else {  // a UTF-16 surrogate pair
      hex(0xD800 + ((cp - 0x10000) >> 10));
      hex(0xDC00 + (cp & 0x3FF));
    }
  }
  out += '"';
}

// Checks f, orders the entries for writing and returns the header with its length prefix.
std::string make_header(const File& f, const std::string& what, std::vector<const Entry*>& order, Checksums sums) {
  for (const Entry& e : f.tensors) {
    if (e.name.empty() || e.name == "__metadata__")
      throw Error(cat(what, ": ", quote(e.name), " cannot be a tensor name"));
    check_entry_size(e, what);
    order.push_back(&e);
  }
  // Decreasing item size keeps every tensor aligned to its item size, given the 8-byte-aligned data start.
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    size_t sa = itemsize(a->dtype), sb = itemsize(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;  // std::string compares bytes unsigned: code point order
  });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->name == order[i - 1]->name) throw Error(cat(what, ": duplicate tensor name ", quote(order[i]->name)));
  std::map<std::string, std::string> metadata;  // the caller's checksum keys are replaced by fresh ones
  for (const auto& [k, v] : f.metadata)
    if (!is_checksum_key(k)) metadata.emplace(k, v);
  if (sums == Checksums::Write) {
    for (const Entry* e : order) metadata[kTensorKey + e->name] = tensor_digest(*e);
    metadata[kHeaderKey] = header_digest(metadata, order);
  }
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      if (h.back() != '{') h += ',';
      put_string(h, k, what, "metadata key");
      h += ':';
      put_string(h, v, what, "metadata value");
    }
    h += '}';
  }
  uint64_t offset = 0;
  for (const Entry* e : order) {
    if (h.size() > 1) h += ',';
    put_string(h, e->name, what, "tensor name");
    h += cat(":{\"dtype\":\"", name(e->dtype), "\",\"shape\":[");
    for (size_t i = 0; i < e->shape.size(); ++i) h += cat(i ? "," : "", e->shape[i]);
    h += cat("],\"data_offsets\":[", offset, ",", offset + e->bytes.size(), "]}");
    offset += e->bytes.size();
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  for (size_t i = 0; i < 8; ++i) prefix[i] = static_cast<char>((h.size() >> (8 * i)) & 0xFF);
  return prefix + h;
}

double load_float(const unsigned char* p, DType t) {  // t is F16, BF16, F32 or F64
  if (t == DType::F16) return f16_to_float(static_cast<uint16_t>(load_le(p, 2)));
  if (t == DType::BF16) return bf16_to_float(static_cast<uint16_t>(load_le(p, 2)));
  if (t == DType::F32) return from_bits<float>(static_cast<uint32_t>(load_le(p, 4)));
  return from_bits<double>(load_le(p, 8));
}

// Going through double is exact for F16/BF16/F32, so to_float32 rounds only F64, once.
template <typename Out> std::vector<Out> widen(const Entry& e, const char* fn) {
  if (e.dtype != DType::F16 && e.dtype != DType::BF16 && e.dtype != DType::F32 && e.dtype != DType::F64)
    throw Error(cat(fn, ": entry ", quote(e.name), " has dtype ", name(e.dtype),
                    "; only F16, BF16, F32 and F64 convert to floating point"));
  check_entry_size(e, fn);
  size_t item = itemsize(e.dtype);
  std::vector<Out> out(e.bytes.size() / item);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<Out>(load_float(e.bytes.data() + i * item, e.dtype));
  return out;
}

}  // namespace

size_t itemsize(DType t) { return kDTypes[static_cast<int>(t)].size; }
const char* name(DType t) { return kDTypes[static_cast<int>(t)].name; }

DType dtype_from_name(const std::string& s) {
  if (const DTypeInfo* d = find_dtype(s)) return d->t;
  throw Error(cat("safetensors: unknown dtype ", quote(s), " (supported: ", kSupported, ")"));
}

const Entry* File::find(const std::string& n) const {  // linear: files hold hundreds of tensors, not millions
  for (const Entry& e : tensors)
    if (e.name == n) return &e;
  return nullptr;
}

File parse(const unsigned char* data, size_t size, const std::string& what) {
  uint64_t n = check_prefix(data, size, size, what);
  Layout lay = parse_header(std::string(reinterpret_cast<const char*>(data) + 8, n), size - 8 - n, what);
  const unsigned char* base = data + 8 + n;
  for (size_t i = 0; i < lay.file.tensors.size(); ++i)
    lay.file.tensors[i].bytes.assign(base + lay.begin[i], base + lay.end[i]);
  verify(lay.file, what);
  return std::move(lay.file);
}

File read(const std::string& path) {
  // Opened without blocking, then checked to be a regular file: opening a FIFO for reading would
  // otherwise wait for a writer for ever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw Error(cat(path, ": cannot open for reading: ", std::strerror(errno)));
  std::unique_ptr<FILE, int (*)(FILE*)> fp(::fdopen(fd, "rb"), &std::fclose);
  if (!fp) {
    ::close(fd);
    throw Error(cat(path, ": cannot open for reading: ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  auto read_exact = [&](void* dst, size_t n) {
    if (n && std::fread(dst, 1, n, fp.get()) != n)
      throw Error(cat(path, ": read failed, or the file shrank while being read: ", std::strerror(errno)));
  };
  uint64_t size = static_cast<uint64_t>(st.st_size);
  unsigned char prefix[8];
  uint64_t n = check_prefix(prefix, std::fread(prefix, 1, 8, fp.get()), size, path);
  std::string header(n, '\0');
  read_exact(header.data(), n);
  // Memory for the data is allocated only now that every size has been checked against the file's.
  Layout lay = parse_header(header, size - 8 - n, path);
  for (size_t i = 0; i < lay.file.tensors.size(); ++i) {  // the entries tile the data in this order
    std::vector<unsigned char>& bytes = lay.file.tensors[i].bytes;
    bytes.resize(lay.end[i] - lay.begin[i]);
    read_exact(bytes.data(), bytes.size());
  }
  verify(lay.file, path);  // every tensor, also those the caller will not use
  if (!lay.file.verified) note_unverified(path);
  return std::move(lay.file);
}

std::vector<unsigned char> serialize(const File& f, Checksums sums) {
  std::vector<const Entry*> order;
  std::string h = make_header(f, "safetensors::serialize", order, sums);
  std::vector<unsigned char> out(h.begin(), h.end());
  for (const Entry* e : order) out.insert(out.end(), e->bytes.begin(), e->bytes.end());
  return out;
}

void write(const std::string& path, const File& f) {
  std::vector<const Entry*> order;
  std::string h = make_header(f, path, order, Checksums::Write);
  // Beside path, so the rename cannot cross file systems (nn/serialize/atomic_file.h).
  serialize::TempFile tmp = serialize::create_temp_beside(path);
  serialize::write_all(tmp, h.data(), h.size(), path);
  crash_point("safetensors.header_written");  // the crash points: core/runtime/crash_point.h
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == order.size() / 2) crash_point("safetensors.half_written");
    serialize::write_all(tmp, order[i]->bytes.data(), order[i]->bytes.size(), path);
  }
  serialize::sync_and_close(tmp, path);
  crash_point("safetensors.synced");
  serialize::rename_over(tmp, path);  // and an fsync of the folder
  crash_point("safetensors.renamed");
}

float f16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  if (exp == 0) {  // zero or subnormal: man * 2^-24, exact in float
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  // Rebias the exponent (15 -> 127); all-ones stays all-ones: inf, or nan keeping its payload.
  uint32_t fexp = exp == 31 ? 0xFFu : exp + 127 - 15;
  return from_bits<float>(sign | (fexp << 23) | (man << 13));
}

float bf16_to_float(uint16_t h) { return from_bits<float>(static_cast<uint32_t>(h) << 16); }  // top half of a float32

std::vector<float> to_float32(const Entry& e) { return widen<float>(e, "safetensors::to_float32"); }
std::vector<double> to_float64(const Entry& e) { return widen<double>(e, "safetensors::to_float64"); }

}  // namespace mg::safetensors
