// Data files from strangers (issue "hostile files"): a CIFAR-10 folder or an ImageFolder whose files
// could make a reader allocate without bound, block for ever, or carry class names that break the
// checkpoint written an epoch later is refused at once, with a DataError naming the file.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "examples/common/archive.h"
#include "maxgrad/data/cifar_binary.h"
#include "maxgrad/data/class_name.h"
#include "maxgrad/data/image_decode.h"
#include "maxgrad/data/image_folder.h"
#include "maxgrad/models/maxvit.h"
#include "maxgrad/nn/serialize/serialize.h"
#include "run_program.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mg::testing::TempDir;
using namespace mg::data;

namespace {

// A CIFAR-10 folder of one record per batch file.
void write_cifar(const TempDir& dir) {
  std::string record(kCifarRecordBytes, '\x40');
  record[0] = 3;
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin", "test_batch.bin"})
    std::ofstream(dir / f, std::ios::binary) << record;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("class names: UTF-8 without commas or control characters, at most 128 bytes") {
  for (const std::string& ok :
       {std::string("airplane"), std::string("Straße"), std::string("猫"), std::string(128, 'a')})
    CHECK_NOTHROW(check_class_name(ok, "test"));
  const std::pair<std::string, std::string> bad[] = {
      {"cat,dog", "holds a comma"},
      {"\xff\xfe", "not valid UTF-8"},
      {"a\x1b[2Jb", "control character"},
      {"", "is empty"},
      {std::string(129, 'a'), "longer than 128"},
      {"\xc0\xaf", "not valid UTF-8"},  // an overlong '/'
  };
  for (const auto& [name, why] : bad) {
    const std::string e = error_of([&] { check_class_name(name, "meta.txt"); });
    CAPTURE(e);
    CHECK(e.find(why) != std::string::npos);
    CHECK(e.find("meta.txt") == 0);
    CHECK(e.find('\x1b') == std::string::npos);  // shown escaped, never sent to the terminal raw
  }
}

TEST_CASE("CIFAR-10 binary: oversized batches, FIFOs and bad class names are refused before reading") {
  TempDir dir;
  write_cifar(dir);
  CHECK(load_cifar10_binary(dir.path.string(), CifarSplit::train).size() == 5);

  // A sparse 1 TB batch file: refused by its size, nothing allocated (before: std::bad_alloc).
  fs::resize_file(dir / "data_batch_2.bin", uintmax_t{1} << 40);
  std::string e = error_of([&] { load_cifar10_binary(dir.path.string(), CifarSplit::train); });
  CHECK(e.find("data_batch_2.bin has 1099511627776 bytes, more than the 30730000") != std::string::npos);
  write_cifar(dir);

  // A FIFO as batches.meta.txt: reading it would wait for a writer that never comes.
  REQUIRE(mkfifo((dir / "batches.meta.txt").c_str(), 0600) == 0);
  e = error_of([&] { load_cifar10_binary(dir.path.string(), CifarSplit::test); });
  CHECK(e.find("batches.meta.txt is not a regular file") != std::string::npos);
  fs::remove(dir / "batches.meta.txt");

  std::ofstream(dir / "batches.meta.txt") << "a\nb\nc\nd\ne\nf\ng\nh\ni\nj,k\n";
  e = error_of([&] { load_cifar10_binary(dir.path.string(), CifarSplit::test); });
  CHECK(e.find("class name 'j,k' holds a comma") != std::string::npos);
}

TEST_CASE("ImageFolder: a class folder whose name is not a usable class name is refused") {
  TempDir dir;
  fs::create_directories(dir / "root/bad,name");
  std::ofstream(dir / "root/bad,name/x.png") << "not read";
  const std::string e = error_of([&] { ImageFolder folder(dir / "root"); });
  CHECK(e.find("class name 'bad,name' holds a comma") != std::string::npos);
}

TEST_CASE("a FIFO given as a safetensors file is refused at once, not waited on") {
  TempDir dir;
  REQUIRE(mkfifo((dir / "weights.safetensors").c_str(), 0600) == 0);
  try {
    mg::serialize::load_tensors(dir / "weights.safetensors");
    FAIL("a FIFO was read");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("weights.safetensors: not a regular file") != std::string::npos);
  }
}

namespace {

// A 1x1 RGB PNG whose image data inflates to about `inflated` bytes where 4 are expected: a zlib
// stream of one fixed-Huffman deflate block, 4 literal zeros then copies of 258 bytes from distance 1
// (13 bits each), so 100 MB come from about 630 KB.
std::vector<uint8_t> png_inflate_bomb(size_t inflated) {
  std::vector<uint8_t> z = {0x78, 0x01};  // zlib header: deflate, 32K window
  uint32_t acc = 0;
  int nbits = 0;
  auto bits_lsb = [&](uint32_t v, int n) {  // deflate's header fields and extra bits: LSB first
    for (int k = 0; k < n; ++k) {
      acc |= ((v >> k) & 1u) << nbits;
      if (++nbits == 8) z.push_back(static_cast<uint8_t>(acc)), acc = 0, nbits = 0;
    }
  };
  auto code = [&](uint32_t c, int n) {  // Huffman codes: most significant bit first
    for (int k = n - 1; k >= 0; --k) bits_lsb((c >> k) & 1u, 1);
  };
  bits_lsb(1, 1), bits_lsb(1, 2);             // the final block, fixed Huffman codes
  for (int k = 0; k < 4; ++k) code(0x30, 8);  // 4 literal zeros: the row's filter byte and its pixel
  size_t n = 4;
  for (; n + 258 <= inflated; n += 258) code(0xC5, 8), code(0, 5);  // length 258 (code 285), distance 1
  code(0, 7);                                                       // end of block
  if (nbits) z.push_back(static_cast<uint8_t>(acc));
  const uint32_t adler = static_cast<uint32_t>(n % 65521) << 16 | 1;  // of n zero bytes
  for (int k = 3; k >= 0; --k) z.push_back(static_cast<uint8_t>(adler >> (8 * k)));

  auto crc32 = [](const std::vector<uint8_t>& b, size_t from) {
    uint32_t c = 0xFFFFFFFF;
    for (size_t i = from; i < b.size(); ++i) {
      c ^= b[i];
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
  };
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
    for (int k = 3; k >= 0; --k) png.push_back(static_cast<uint8_t>(data.size() >> (8 * k)));
    const size_t start = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    const uint32_t c = crc32(png, start);
    for (int k = 3; k >= 0; --k) png.push_back(static_cast<uint8_t>(c >> (8 * k)));
  };
  chunk("IHDR", {0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0});  // 1x1, 8-bit RGB
  chunk("IDAT", z);
  chunk("IEND", {});
  return png;
}

}  // namespace

TEST_CASE("a PNG whose data inflates far beyond its size is refused, not decoded") {
  // Before the allocation budget, a 97 KB bomb of this kind inflating to 100 MB took predict to
  // 112 MB resident and was decoded.
  const std::vector<uint8_t> ok = png_inflate_bomb(4), bomb = png_inflate_bomb(100'000'000);
  std::vector<uint8_t> rgb(3, 7);
  decode_image_rgb_from_memory(ok.data(), ok.size(), "tiny.png", 1, 1, rgb.data());
  CHECK(rgb == std::vector<uint8_t>{0, 0, 0});  // the generator makes a valid PNG
  CHECK(image_header_from_memory(bomb.data(), bomb.size(), "bomb.png").width == 1);
  const std::string e =
      error_of([&] { decode_image_rgb_from_memory(bomb.data(), bomb.size(), "bomb.png", 1, 1, rgb.data()); });
  CHECK(e.find("bomb.png: corrupt (outofmem)") != std::string::npos);
}

TEST_CASE("a JPEG of thousands of scans is refused before decoding") {
  // SOI, then 10,000 start-of-scan markers: each would cost stb a pass over every block.
  std::vector<uint8_t> jpeg = {0xFF, 0xD8};
  for (int i = 0; i < 10000; ++i) jpeg.insert(jpeg.end(), {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00});
  const std::string e = error_of([&] { image_header_from_memory(jpeg.data(), jpeg.size(), "scans.jpg"); });
  CHECK(e.find("scans.jpg: JPEG of more than 256 scans") != std::string::npos);
}

namespace {
// tar run as a test's fixture maker (the archives are made here, not committed).
void tar(const TempDir& dir, const std::string& args) {
  REQUIRE(std::system(("cd '" + dir.path.string() + "' && tar " + args + " 2>/dev/null").c_str()) == 0);
}
}  // namespace

TEST_CASE("archives: only files and folders at relative paths, within a budget, are extracted") {
  TempDir dir;
  fs::create_directories(dir / "src/test/cat");
  std::ofstream(dir / "src/test/cat/0000.png") << std::string(1000, 'x');
  fs::create_symlink("/etc", dir / "src/test/link");
  fs::create_directories(dir / "out");
  auto refusal = [&](const std::string& archive, const mg::cli::ArchiveBudget& budget = {}) {
    return error_of([&] { mg::cli::extract_archive(dir / archive, dir / "out", budget); });
  };

  tar(dir, "-czf good.tar.gz -C src test/cat");
  CHECK(refusal("good.tar.gz").empty());
  CHECK(fs::file_size(dir / "out/test/cat/0000.png") == 1000);
  CHECK(refusal("good.tar.gz", {999, 100}).find("more than 100 members or 999 bytes") != std::string::npos);
  CHECK(refusal("good.tar.gz", {1 << 20, 1}).find("more than 1 members") != std::string::npos);

  tar(dir, "-czf link.tar.gz -C src test");  // holds test/link -> /etc
  CHECK(refusal("link.tar.gz").find("member 'test/link -> /etc' is not a file or a folder (a symbolic link)") !=
        std::string::npos);

  tar(dir, "-czf up.tar.gz -C src/test -P ../test/cat/0000.png");
  CHECK(refusal("up.tar.gz").find("would be written outside the folder") != std::string::npos);
  tar(dir, "-czf abs.tar.gz -P '" + (dir / "src/test/cat/0000.png") + "'");
  CHECK(refusal("abs.tar.gz").find("would be written outside the folder") != std::string::npos);

  std::ofstream(dir / "junk.tar.gz") << "not an archive";
  CHECK(refusal("junk.tar.gz").find("tar could not list") != std::string::npos);
}

TEST_CASE("step_dump: input files that are not what the flags describe exit 2, writing nothing") {
  TempDir dir;
  const std::vector<std::string> tiny = {"--block-channels", "16,32,64", "--block-layers",   "1,1,1",
                                         "--stem-channels",  "16",       "--head-dim",       "16",
                                         "--stem-stride",    "2",        "--partition-size", "2"};
  mg::models::MaxVitConfig cfg = mg::models::MaxVitConfig::preset("cifar");
  cfg.block_channels = {16, 32, 64}, cfg.block_layers = {1, 1, 1}, cfg.stem_channels = 16, cfg.head_dim = 16;
  cfg.stem_stride = 2, cfg.partition_size = 2;
  mg::models::MaxVit model(cfg, 0);
  mg::serialize::save_state_dict(model, dir / "w.safetensors");
  auto batch = [&](const std::string& name, std::vector<int64_t> x_shape, int64_t label) {
    mg::serialize::save_tensors(dir / name, {{"x", mg::zeros(x_shape, mg::DType::Float32)},
                                             {"y", mg::Tensor::from_vector_i64({label, 0}, {2})}});
  };
  batch("ok.safetensors", {2, 3, 32, 32}, 1);
  batch("wrong_size.safetensors", {2, 3, 16, 16}, 1);
  batch("wrong_label.safetensors", {2, 3, 32, 32}, 10);
  std::ofstream(dir / "junk.safetensors") << "junk";
  auto step = [&](const std::string& weights, const std::string& b) {
    std::vector<std::string> args = tiny;
    args.insert(args.end(), {"--weights", weights, "--batch", b, "--out", "o.safetensors"});
    return mg::testing::run_command(mg::testing::program_command("step_dump", args), dir.path.string(), dir / "run");
  };
  const mg::testing::Result ok = step("w.safetensors", "ok.safetensors");
  REQUIRE_MESSAGE(ok.status == 0, ok.err);
  fs::remove(dir / "o.safetensors");
  const std::pair<std::pair<const char*, const char*>, const char*> bad[] = {
      {{"junk.safetensors", "ok.safetensors"}, "junk.safetensors"},
      {{"w.safetensors", "junk.safetensors"}, "junk.safetensors"},
      {{"w.safetensors", "wrong_size.safetensors"}, "these model flags take float (N, 3, 32, 32)"},
      {{"w.safetensors", "wrong_label.safetensors"}, "is not a class of 10"}};
  for (const auto& [files, says] : bad) {
    const mg::testing::Result r = step(files.first, files.second);
    CAPTURE(r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(says) != std::string::npos);
    CHECK(!fs::exists(dir / "o.safetensors"));
  }
}
