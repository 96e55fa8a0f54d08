// Writes the seed corpora in tests/fuzz/corpus/<target>/ (run once; the files are committed):
//   make_corpus tests/fuzz/corpus
// Each seed is a small valid input, or a near miss the loader must refuse, so the fuzzers start
// from every format's real structure instead of discovering it byte by byte.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "examples/common/train_flags.h"
#include "fuzz_model.h"
#include "maxgrad/core/factory.h"
#include "maxgrad/nn/serialize/checkpoint.h"
#include "maxgrad/nn/serialize/safetensors.h"
#include "maxgrad/nn/serialize/serialize.h"

using namespace mg;
namespace fs = std::filesystem;
namespace st = mg::safetensors;

namespace {

fs::path g_root;

void put(const std::string& target, const std::string& name, const std::vector<unsigned char>& bytes) {
  fs::create_directories(g_root / target);
  std::ofstream out(g_root / target / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void put(const std::string& target, const std::string& name, const std::string& s) {
  put(target, name, std::vector<unsigned char>(s.begin(), s.end()));
}
std::vector<unsigned char> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
// A safetensors file from a literal header and data bytes.
std::vector<unsigned char> raw_safetensors(const std::string& header, size_t data_bytes) {
  std::vector<unsigned char> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>((header.size() >> (8 * i)) & 0xff);
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0x3c);
  return out;
}
std::string args(const std::vector<std::string>& a, unsigned char mode) {
  std::string s(1, static_cast<char>(mode));
  for (const std::string& x : a) s += x + std::string(1, '\0');
  return s;
}

void safetensors_seeds() {
  st::File f;
  auto entry = [](const char* name, st::DType t, std::vector<int64_t> shape, size_t n) {
    st::Entry e{name, t, std::move(shape), {}};
    for (size_t i = 0; i < n * st::itemsize(t); ++i) e.bytes.push_back(static_cast<unsigned char>(i * 37 + 1));
    return e;
  };
  f.tensors = {entry("w", st::DType::F32, {2, 3}, 6),    entry("d", st::DType::F64, {2}, 2),
               entry("i", st::DType::I64, {3}, 3),       entry("h", st::DType::F16, {2, 2}, 4),
               entry("b", st::DType::BF16, {1}, 1),      entry("u", st::DType::U8, {4}, 4),
               entry("flag", st::DType::BOOL, {2}, 2),   entry("scalar", st::DType::F32, {}, 1),
               entry("empty", st::DType::F32, {0, 3}, 0)};
  f.metadata = {{"format", "pt"}, {"note", "caf\xc3\xa9"}};
  put("safetensors", "mixed.safetensors", st::serialize(f));  // with checksums, as maxgrad writes
  put("safetensors", "mixed_no_checksums.safetensors", st::serialize(f, st::Checksums::Omit));  // as PyTorch writes
  std::vector<unsigned char> damaged = st::serialize(f);
  damaged[damaged.size() - 20] ^= 0x04;  // one bit in a tensor: a ChecksumError naming it
  put("safetensors", "damaged_tensor.safetensors", damaged);
  put("safetensors", "empty.safetensors", st::serialize(st::File{}));
  // Near misses the reader must refuse: a gap, an overlap, a shape/offset mismatch, a huge header length.
  put("safetensors", "gap.safetensors",
      raw_safetensors(
          R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}})",
          4));
  put("safetensors", "mismatch.safetensors",
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}})", 8));
  put("safetensors", "escapes.safetensors",
      raw_safetensors(
          R"({"__metadata__":{"k\u00e9y":"v\n"},"\ud83d\ude00":{"dtype":"I8","shape":[1,1],"data_offsets":[0,1]}})",
          1));
  std::vector<unsigned char> huge = raw_safetensors("{}", 0);
  huge[7] = 0x7f;
  put("safetensors", "huge_header_length.safetensors", huge);
  // A zero-size tensor whose other dims multiply past 2^63: Tensor::empty must refuse it, not overflow.
  put("safetensors", "zero_size_huge_dims.safetensors",
      raw_safetensors(R"({"z":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}})", 0));
}

void cifar_seeds() {
  auto record = [](unsigned char label, unsigned char fill) {
    std::vector<unsigned char> r(3073, fill);
    r[0] = label;
    for (size_t i = 1; i < r.size(); i += 97) r[i] = static_cast<unsigned char>(i);
    return r;
  };
  std::vector<unsigned char> two = {0};  // byte 0: no batches.meta.txt
  for (unsigned char l : {3, 9}) {
    auto r = record(l, static_cast<unsigned char>(l * 20));
    two.insert(two.end(), r.begin(), r.end());
  }
  put("cifar_binary", "two_records.bin", two);
  const std::string meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  std::vector<unsigned char> with_meta = {static_cast<unsigned char>(0x80 | meta.size())};
  with_meta.insert(with_meta.end(), meta.begin(), meta.end());
  auto r = record(7, 1);
  with_meta.insert(with_meta.end(), r.begin(), r.end());
  put("cifar_binary", "meta_one_record.bin", with_meta);
  std::vector<unsigned char> bad_label = {0};
  auto b = record(10, 0);
  bad_label.insert(bad_label.end(), b.begin(), b.end());
  put("cifar_binary", "label_10.bin", bad_label);
  std::vector<unsigned char> truncated(two.begin(), two.end() - 5);
  put("cifar_binary", "truncated.bin", truncated);
}

void image_seeds() {
  const fs::path dir = fs::temp_directory_path() / "maxgrad_make_corpus";
  fs::create_directories(dir);
  for (int comp : {1, 3, 4}) {
    const int w = 5, h = 3;
    std::vector<unsigned char> px(static_cast<size_t>(w * h * comp));
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 29);
    const std::string c = std::to_string(comp);
    stbi_write_png((dir / "a.png").c_str(), w, h, comp, px.data(), w * comp);
    put("image", "c" + c + ".png", slurp((dir / "a.png").string()));
    stbi_write_bmp((dir / "a.bmp").c_str(), w, h, comp, px.data());
    put("image", "c" + c + ".bmp", slurp((dir / "a.bmp").string()));
    stbi_write_jpg((dir / "a.jpg").c_str(), w, h, comp, px.data(), 90);
    put("image", "c" + c + ".jpg", slurp((dir / "a.jpg").string()));
  }
  fs::remove_all(dir);
}

void checkpoint_seeds() {
  const fs::path dir = fs::temp_directory_path() / "maxgrad_make_corpus";
  fs::create_directories(dir);
  fuzz::TinyRun run;
  serialize::CheckpointInfo info;
  info.epoch = 1, info.batch = 2, info.step = 3, info.data_seed = 4;
  info.metadata["config"] = "--preset cifar --epochs 2";
  serialize::save_checkpoint((dir / "ck.safetensors").string(), run.model, &run.opt, run.rngs(), info);
  put("checkpoint", "valid.safetensors", slurp((dir / "ck.safetensors").string()));
  std::vector<unsigned char> damaged = slurp((dir / "ck.safetensors").string());
  damaged[damaged.size() / 2 + damaged.size() / 4] ^= 0x01;  // one bit in the data section
  put("checkpoint", "damaged_bit.safetensors", damaged);
  serialize::save_checkpoint((dir / "ck.safetensors").string(), run.model, nullptr, run.rngs(), info);
  put("checkpoint", "no_optimizer.safetensors", slurp((dir / "ck.safetensors").string()));
  serialize::save_state_dict(run.model, (dir / "ck.safetensors").string());
  put("checkpoint", "plain_state_dict.safetensors", slurp((dir / "ck.safetensors").string()));
  fs::remove_all(dir);
}

void flags_seeds() {
  const std::vector<std::string> step = {"--preset",
                                         "cifar",
                                         "--input-size",
                                         "32",
                                         "--stem-channels",
                                         "16",
                                         "--stem-stride",
                                         "1",
                                         "--block-channels",
                                         "16,32,64",
                                         "--block-layers",
                                         "1,2,1",
                                         "--head-dim",
                                         "16",
                                         "--partition-size",
                                         "4",
                                         "--num-classes",
                                         "10",
                                         "--bn-momentum",
                                         "0.01",
                                         "--bn-eps",
                                         "0.001",
                                         "--dtype",
                                         "float32",
                                         "--mode",
                                         "train",
                                         "--lr",
                                         "0.1",
                                         "--steps",
                                         "1",
                                         "--weights",
                                         "w",
                                         "--batch",
                                         "b",
                                         "--out",
                                         "o"};
  put("flags", "step_dump_golden", args(step, 0));
  put("flags", "step_dump_maxvit_t", args({"--preset", "maxvit_t", "--threads=2", "--mode=eval"}, 0));
  put("flags", "step_dump_bad", args({"--head-dim", "7", "--input-size", "31,33", "--nope"}, 0));
  const std::vector<std::string> train = {
      "--epochs", "2",      "--batch", "64",    "--lr",   "0.002",    "--subset",
      "100",      "--seed", "7",       "--out", "runs/x", "--resume", "--stochastic-depth",
      "0.2"};
  put("flags", "train", args(train, 1));
  cli::TrainFlags tf;
  cli::Flags f("train_cifar", "");
  tf.add_to(f);
  f.parse(train);
  std::vector<std::string> resume = {cli::join(tf.canonical_args(), " "), "--resume", "--epochs", "3"};
  put("flags", "resume", args(resume, 2));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus CORPUS_ROOT (tests/fuzz/corpus)\n");
    return 2;
  }
  g_root = argv[1];
  safetensors_seeds();
  cifar_seeds();
  image_seeds();
  checkpoint_seeds();
  flags_seeds();
  return 0;
}
