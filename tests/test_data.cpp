// Tests of the data layer: CIFAR-10 binary batches, image folders, augmentation, the loader and the
// synthetic set. Every file is written to a fresh temporary folder; the real CIFAR-10 test is skipped unless
// MAXGRAD_SHARED points at the shared/ folder.
#include <doctest/doctest.h>

// The writer half of stb is only needed to make test images; the library proper only decodes.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "maxgrad/data/cifar_binary.h"
#include "maxgrad/data/image_folder.h"
#include "maxgrad/data/image_set.h"
#include "maxgrad/data/loader.h"
#include "maxgrad/data/subset.h"
#include "maxgrad/data/synthetic.h"
#include "maxgrad/data/transforms.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mg::testing::TempDir;
using namespace mg::data;

namespace {

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Image `seed` of a deterministic 3x32x32 pattern in CHW order, distinct per seed.
std::vector<uint8_t> pattern(int seed, int64_t h = 32, int64_t w = 32) {
  std::vector<uint8_t> img(static_cast<size_t>(3 * h * w));
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>((i * 7 + static_cast<size_t>(seed) * 31) % 251);
  return img;
}

// One CIFAR record per label in `labels`, image k = pattern(first + k).
std::vector<uint8_t> cifar_records(const std::vector<int>& labels, int first) {
  std::vector<uint8_t> out;
  for (size_t k = 0; k < labels.size(); ++k) {
    out.push_back(static_cast<uint8_t>(labels[k]));
    const std::vector<uint8_t> img = pattern(first + static_cast<int>(k));
    out.insert(out.end(), img.begin(), img.end());
  }
  return out;
}

// Writes a CHW image as PNG, BMP or JPEG (chosen by the extension) through stb_image_write, which wants HWC.
void write_image(const std::string& path, const std::vector<uint8_t>& chw, int h = 32, int w = 32) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<uint8_t> hwc(chw.size());
  for (int p = 0; p < h * w; ++p)
    for (int c = 0; c < 3; ++c) hwc[static_cast<size_t>(p * 3 + c)] = chw[static_cast<size_t>(c * h * w + p)];
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  int ok = 0;
  if (ext == ".png") ok = stbi_write_png(path.c_str(), w, h, 3, hwc.data(), w * 3);
  if (ext == ".bmp") ok = stbi_write_bmp(path.c_str(), w, h, 3, hwc.data());
  if (ext == ".jpg") ok = stbi_write_jpg(path.c_str(), w, h, 3, hwc.data(), 95);
  REQUIRE(ok != 0);
}

std::vector<uint8_t> load(const Dataset& d, int64_t i) {
  std::vector<uint8_t> out(static_cast<size_t>(d.shape().numel()));
  d.load(i, out.data());
  return out;
}

// Runs `fn` and returns the DataError message it throws ("" if none).
template <typename F> std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("cifar binary: train and test splits read back exactly") {
  TempDir tmp;
  const std::string bin = tmp / "cifar-10-batches-bin";
  for (int b = 1; b <= 5; ++b)
    write_bytes(bin + "/data_batch_" + std::to_string(b) + ".bin", cifar_records({b, 9}, 10 * b));
  write_bytes(bin + "/test_batch.bin", cifar_records({0, 3, 7}, 100));
  std::ofstream(bin + "/batches.meta.txt")
      << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

  const ImageSet train = load_cifar10_binary(tmp.path.string(), CifarSplit::train);  // parent of the bin folder
  REQUIRE(train.size() == 10);
  CHECK(train.shape().numel() == 3072);
  CHECK(train.classes().at(3) == "cat");
  CHECK(train.labels() == std::vector<int64_t>{1, 9, 2, 9, 3, 9, 4, 9, 5, 9});
  CHECK(load(train, 0) == pattern(10));  // batch 1, record 0: CHW bytes copied as stored
  CHECK(load(train, 9) == pattern(51));  // batch 5, record 1

  const ImageSet test = load_cifar10_binary(bin, CifarSplit::test);  // the bin folder itself
  CHECK(test.labels() == std::vector<int64_t>{0, 3, 7});
  CHECK(load(test, 2) == pattern(102));
}

TEST_CASE("cifar binary: missing, truncated and mislabelled files are named") {
  TempDir tmp;
  write_bytes(tmp / "test_batch.bin", cifar_records({1, 2}, 0));
  const std::string missing = error_of([&] { load_cifar10_binary(tmp.path.string(), CifarSplit::train); });
  CHECK(contains(missing, "data_batch_1.bin"));

  std::vector<uint8_t> cut = cifar_records({1, 2}, 0);
  cut.resize(cut.size() - 100);
  write_bytes(tmp / "test_batch.bin", cut);
  const std::string truncated = error_of([&] { load_cifar10_binary(tmp.path.string(), CifarSplit::test); });
  CHECK(contains(truncated, tmp / "test_batch.bin"));
  CHECK(contains(truncated, "3073"));

  write_bytes(tmp / "test_batch.bin", cifar_records({1, 10}, 0));
  const std::string label = error_of([&] { load_cifar10_binary(tmp.path.string(), CifarSplit::test); });
  CHECK(contains(label, tmp / "test_batch.bin"));
  CHECK(contains(label, "label 10"));
}

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("image folder: classes and files sorted by name, lossless pixels exact") {
  TempDir tmp;
  write_image(tmp / "root/zebra/b.png", pattern(1));
  write_image(tmp / "root/zebra/a.bmp", pattern(2));
  write_image(tmp / "root/ant/x.PNG", pattern(3));
  write_image(tmp / "root/ant/y.jpg", pattern(4));
  write_bytes(tmp / "root/ant/notes.txt", {'h', 'i'});  // not an image: ignored

  const ImageFolder folder(tmp / "root");
  CHECK(folder.classes() == std::vector<std::string>{"ant", "zebra"});
  REQUIRE(folder.size() == 4);
  CHECK(folder.label(0) == 0);
  CHECK(folder.label(2) == 1);
  CHECK(fs::path(folder.path(2)).filename() == "a.bmp");
  CHECK(load(folder, 0) == pattern(3));  // PNG: exact
  CHECK(load(folder, 2) == pattern(2));  // BMP: exact
  CHECK(load(folder, 3) == pattern(1));
  // JPEG is lossy: close, not equal.
  const std::vector<uint8_t> jpg = load(folder, 1), want = pattern(4);
  double err = 0;
  for (size_t i = 0; i < jpg.size(); ++i) err += std::abs(jpg[i] - want[i]);
  CHECK(err / static_cast<double>(jpg.size()) < 40);

  const ImageSet mem = to_memory(folder);
  CHECK(mem.size() == 4);
  CHECK(mem.labels() == std::vector<int64_t>{0, 0, 1, 1});
  CHECK(load(mem, 3) == pattern(1));
}

TEST_CASE("image folder: grey images become RGB") {
  TempDir tmp;
  std::vector<uint8_t> grey(32 * 32);
  for (size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<uint8_t>(i % 256);
  fs::create_directories(tmp / "root/a");
  REQUIRE(stbi_write_png((tmp / "root/a/g.png").c_str(), 32, 32, 1, grey.data(), 32) != 0);
  const std::vector<uint8_t> rgb = load(ImageFolder(tmp / "root"), 0);
  for (int c = 0; c < 3; ++c) CHECK(std::vector<uint8_t>(rgb.begin() + c * 1024, rgb.begin() + (c + 1) * 1024) == grey);
}

TEST_CASE("image folder: bad files are named, or skipped and counted with skip_bad") {
  TempDir tmp;
  write_image(tmp / "root/a/good.png", pattern(1));
  write_image(tmp / "root/b/good.png", pattern(2));
  write_bytes(tmp / "root/b/corrupt.png", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});

  const std::string err = error_of([&] { ImageFolder f(tmp / "root"); });
  CHECK(contains(err, tmp / "root/b/corrupt.png"));
  CHECK(contains(err, "skip_bad"));

  ImageFolderOptions skip;
  skip.skip_bad = true;
  const ImageFolder f(tmp / "root", skip);
  CHECK(f.size() == 2);
  CHECK(f.skipped() == 1);
  CHECK(contains(f.skipped_files().at(0), "corrupt.png"));

  SUBCASE("wrong size is named") {
    write_image(tmp / "root/b/big.png", pattern(3, 40, 40), 40, 40);
    const std::string size_err = error_of([&] { ImageFolder g(tmp / "root", skip); });
    CHECK(size_err.empty());  // skipped
    fs::remove(tmp / "root/b/corrupt.png");
    const std::string named = error_of([&] { ImageFolder g(tmp / "root"); });
    CHECK(contains(named, "big.png"));
    CHECK(contains(named, "40x40"));
  }
  SUBCASE("damaged data behind a good header: caught at load, or by a full scan") {
    fs::remove(tmp / "root/b/corrupt.png");
    std::ifstream in(tmp / "root/b/good.png", std::ios::binary);
    std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    png.resize(png.size() / 2);  // keeps the IHDR header, cuts the pixel data
    write_bytes(tmp / "root/b/half.png", png);

    const ImageFolder header_only(tmp / "root");  // header scan passes
    REQUIRE(header_only.size() == 3);
    const std::string at_load = error_of([&] { load(header_only, 2); });
    CHECK(contains(at_load, "half.png"));

    ImageFolderOptions full = skip;
    full.full_scan = true;
    const ImageFolder scanned(tmp / "root", full);
    CHECK(scanned.size() == 2);
    CHECK(scanned.skipped() == 1);
  }
}

TEST_CASE("image folder: empty class, no classes, missing root") {
  TempDir tmp;
  fs::create_directories(tmp / "root");
  CHECK(contains(error_of([&] { ImageFolder f(tmp / "root"); }), "no class folders"));
  write_image(tmp / "root/a/x.png", pattern(1));
  fs::create_directories(tmp / "root/empty");
  const std::string err = error_of([&] { ImageFolder f(tmp / "root"); });
  CHECK(contains(err, "empty"));
  CHECK(contains(err, "no .jpg"));
  CHECK(contains(error_of([&] { ImageFolder f(tmp / "nowhere"); }), "not a folder"));
}

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("transforms: flip reverses columns, centre crop is identity") {
  const std::vector<uint8_t> src = pattern(5, 4, 6);
  std::vector<uint8_t> dst(src.size());
  crop_flip(src.data(), 3, 4, 6, 4, AugmentDraw{4, 4, false}, dst.data());
  CHECK(dst == src);
  crop_flip(src.data(), 3, 4, 6, 4, AugmentDraw{4, 4, true}, dst.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 6; ++x)
        CHECK(dst[static_cast<size_t>(c * 24 + y * 6 + x)] == src[static_cast<size_t>(c * 24 + y * 6 + 5 - x)]);
}

TEST_CASE("transforms: extreme crop offsets show the zero padding") {
  std::vector<uint8_t> src(3 * 32 * 32, 200);
  std::vector<uint8_t> dst(src.size());
  const auto at = [&](int c, int y, int x) { return dst[static_cast<size_t>(c * 1024 + y * 32 + x)]; };
  crop_flip(src.data(), 3, 32, 32, 4, AugmentDraw{0, 0, false}, dst.data());  // window at the padded top-left
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) CHECK(at(c, y, x) == ((y < 4 || x < 4) ? 0 : 200));
  crop_flip(src.data(), 3, 32, 32, 4, AugmentDraw{8, 8, false}, dst.data());  // bottom-right
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) CHECK(at(1, y, x) == ((y >= 28 || x >= 28) ? 0 : 200));
  // A shift moves content: offset_x = pad + 1 reads one column to the right.
  const std::vector<uint8_t> p = pattern(9);
  crop_flip(p.data(), 3, 32, 32, 4, AugmentDraw{4, 5, false}, dst.data());
  CHECK(at(2, 7, 10) == p[2 * 1024 + 7 * 32 + 11]);
}

TEST_CASE("transforms: normalisation values") {
  const std::vector<uint8_t> px = {0, 255, 128, 0, 255, 128, 0, 255, 128};  // 3 channels of 1x3
  std::vector<float> f(9);
  std::vector<double> d(9);
  normalize(px.data(), 3, 1, 3, kCifar10Norm, f.data());
  normalize(px.data(), 3, 1, 3, kCifar10Norm, d.data());
  for (int c = 0; c < 3; ++c) {
    const double mean = kCifar10Norm.mean[c], sd = kCifar10Norm.stddev[c];
    CHECK(d[c * 3 + 0] == doctest::Approx(-mean / sd).epsilon(1e-6));
    CHECK(d[c * 3 + 1] == doctest::Approx((1 - mean) / sd).epsilon(1e-6));
    CHECK(d[c * 3 + 2] == doctest::Approx((128 / 255.0 - mean) / sd).epsilon(1e-6));
    for (int k = 0; k < 3; ++k) CHECK(f[c * 3 + k] == doctest::Approx(d[c * 3 + k]).epsilon(1e-5));
  }
  CHECK(d[0] == doctest::Approx(-0.4914 / 0.2470));
}

TEST_CASE("transforms: draws are deterministic per (seed, epoch, index) and cover all choices") {
  const AugmentDraw a = draw_augment(7, 3, 12345, 4), b = draw_augment(7, 3, 12345, 4);
  CHECK(a.offset_y == b.offset_y);
  CHECK(a.offset_x == b.offset_x);
  CHECK(a.flip == b.flip);
  std::set<int64_t> ys, xs;
  int flips = 0, same_as_next_epoch = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const AugmentDraw d = draw_augment(7, 0, i, 4), e = draw_augment(7, 1, i, 4);
    ys.insert(d.offset_y);
    xs.insert(d.offset_x);
    flips += d.flip;
    same_as_next_epoch += d.offset_y == e.offset_y && d.offset_x == e.offset_x && d.flip == e.flip;
  }
  CHECK(ys == std::set<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(xs.size() == 9);
  CHECK(flips > n * 0.45);
  CHECK(flips < n * 0.55);
  CHECK(same_as_next_epoch < n / 50);  // ~1/162 by chance
  CHECK_FALSE(draw_augment(7, 0, 1, 4, /*random_flip=*/false).flip);
}

// ---------------------------------------------------------------------------------------------------------
namespace {

// Image i is filled with i % 256 and labelled i % 10: a batch can be checked against its indices.
ImageSet counting_set(int64_t n) {
  ImageSet s(ImageShape{3, 8, 8}, cifar10_classes());
  for (int64_t i = 0; i < n; ++i) s.add(std::vector<uint8_t>(3 * 8 * 8, static_cast<uint8_t>(i % 256)).data(), i % 10);
  return s;
}

std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch, int64_t first_batch = 0) {
  std::vector<Batch> out;
  loader.start_epoch(epoch, first_batch);
  for (Batch b; loader.next(b);) out.push_back(b);
  return out;
}

std::vector<int64_t> visited(const std::vector<Batch>& batches) {
  std::vector<int64_t> all;
  for (const Batch& b : batches) all.insert(all.end(), b.indices.begin(), b.indices.end());
  return all;
}

}  // namespace

TEST_CASE("loader: every index once per epoch, labels and pixels match") {
  const ImageSet set = counting_set(103);
  LoaderOptions opt;
  opt.batch_size = 10;
  DataLoader loader(set, opt);
  CHECK(loader.batches_per_epoch() == 11);
  const std::vector<Batch> epoch = whole_epoch(loader, 0);
  REQUIRE(epoch.size() == 11);
  CHECK(epoch.back().n == 3);
  std::vector<int64_t> all = visited(epoch);
  CHECK(all != loader.epoch_order(1));
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 103; ++i) CHECK(all[static_cast<size_t>(i)] == i);
  const Batch& b = epoch[4];
  CHECK((b.n == 10 && b.c == 3 && b.h == 8 && b.w == 8 && b.batch_index == 4));
  for (int64_t k = 0; k < b.n; ++k) {
    CHECK(b.y[static_cast<size_t>(k)] == b.indices[static_cast<size_t>(k)] % 10);
    const float want = (static_cast<float>(b.indices[static_cast<size_t>(k)] % 256) / 255.f - 0.4822f) / 0.2435f;
    CHECK(b.x[static_cast<size_t>(k * 192 + 64 + 5)] == doctest::Approx(want).epsilon(1e-5));  // channel 1
  }

  opt.drop_last = true;
  DataLoader dropping(set, opt);
  CHECK(dropping.batches_per_epoch() == 10);
  CHECK(visited(whole_epoch(dropping, 0)).size() == 100);
  opt.shuffle = false;
  DataLoader ordered(set, opt);
  CHECK(visited(whole_epoch(ordered, 5))[42] == 42);
}

TEST_CASE("loader: the usage shown in loader.h") {
  const ImageSet train_set = make_synthetic(300, 0);
  DataLoader loader(train_set, {/*batch_size=*/128, /*shuffle=*/true, /*drop_last=*/true, /*seed=*/0,
                                /*augment=*/true});
  int64_t steps = 0;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    for (Batch b; loader.next(b);) {
      CHECK(b.x.size() == 128 * 3 * 32 * 32);
      CHECK(b.y.size() == 128);
      ++steps;
    }
  }
  CHECK(steps == 4);
}

TEST_CASE("loader: order depends on seed and epoch only") {
  const ImageSet set = counting_set(64);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.seed = 3;
  DataLoader a(set, opt), b(set, opt);
  const std::vector<int64_t> a0 = visited(whole_epoch(a, 0)), a1 = visited(whole_epoch(a, 1));
  CHECK(a0 != a1);
  CHECK(visited(whole_epoch(b, 0)) == a0);
  CHECK(visited(whole_epoch(b, 0)) == a0);  // repeating an epoch repeats it
  opt.seed = 4;
  DataLoader c(set, opt);
  CHECK(visited(whole_epoch(c, 0)) != a0);
  CHECK(epoch_permutation(64, 3, 1) == a1);
}

TEST_CASE("loader: batches independent of thread count, prefetch depth and resume point") {
  const ImageSet set = make_synthetic(200, 1);
  LoaderOptions opt;
  opt.batch_size = 32;
  opt.augment = true;
  opt.seed = 11;
  std::vector<Batch> one_thread, no_prefetch;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
    DataLoader loader(set, opt);
    one_thread = whole_epoch(loader, 2);
  }
  std::vector<Batch> two_threads;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
    DataLoader loader(set, opt);
    two_threads = whole_epoch(loader, 2);
    opt.num_prefetch = 0;
    DataLoader sync(set, opt);
    no_prefetch = whole_epoch(sync, 2);
  }
  REQUIRE(one_thread.size() == two_threads.size());
  for (size_t k = 0; k < one_thread.size(); ++k) {
    CHECK(one_thread[k].x == two_threads[k].x);
    CHECK(one_thread[k].x == no_prefetch[k].x);
    CHECK(one_thread[k].y == two_threads[k].y);
  }
  opt.num_prefetch = 2;
  DataLoader resumed(set, opt);
  const std::vector<Batch> tail = whole_epoch(resumed, 2, 4);
  REQUIRE(tail.size() == 3);
  CHECK(tail[0].batch_index == 4);
  CHECK(tail[0].x == one_thread[4].x);
  CHECK(tail[2].indices == one_thread[6].indices);
  // Augmentation changes pixels, and differently next epoch.
  DataLoader next_epoch(set, opt);
  CHECK(whole_epoch(next_epoch, 3)[0].x != one_thread[0].x);
  opt.augment = false;
  DataLoader plain(set, opt);
  CHECK(whole_epoch(plain, 2)[0].x != one_thread[0].x);
}

TEST_CASE("loader: a decoding error reaches next(), and an abandoned epoch is safe") {
  TempDir tmp;
  for (int i = 0; i < 20; ++i) write_image(tmp / "root/a/" + std::to_string(100 + i) + ".png", pattern(i));
  const ImageFolder folder(tmp / "root");
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.shuffle = false;
  DataLoader loader(folder, opt);
  Batch b;
  loader.start_epoch(0);
  REQUIRE(loader.next(b));  // epoch left unfinished: start_epoch and the destructor must stop the worker
  loader.start_epoch(1);
  REQUIRE(loader.next(b));
  // Break a file after the scan. It is in batch 4, which the worker (at most 2 batches ahead of the caller,
  // who has taken batch 0) cannot have started yet.
  write_bytes(folder.path(17), {1, 2, 3});
  for (int k = 1; k <= 3; ++k) REQUIRE(loader.next(b));
  const std::string err = error_of([&] { loader.next(b); });
  CHECK(contains(err, "117.png"));
  CHECK_FALSE(loader.next(b));  // the epoch is over once it failed
  CHECK_THROWS_AS(DataLoader(folder, LoaderOptions{0}), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("subset: first per class") {
  const ImageSet set = counting_set(100);
  const Subset sub = first_per_class(set, 3);
  REQUIRE(sub.size() == 30);
  CHECK(sub.base_index(0) == 0);
  CHECK(sub.base_index(10) == 10);
  CHECK(sub.base_index(29) == 29);
  CHECK(sub.label(13) == 3);
  CHECK(load(sub, 13) == load(set, 13));
  CHECK(first_per_class(set, 1000).size() == 100);
}

TEST_CASE("synthetic: deterministic, balanced, prefix-stable, varied") {
  const ImageSet a = make_synthetic(50, 5), b = make_synthetic(50, 5), c = make_synthetic(20, 5);
  CHECK(a.pixels() == b.pixels());
  CHECK(std::equal(c.pixels().begin(), c.pixels().end(), a.pixels().begin()));
  CHECK(make_synthetic(50, 6).pixels() != a.pixels());
  CHECK(a.classes().size() == 10);
  for (int64_t i = 0; i < 50; ++i) CHECK(a.label(i) == i % 10);
  std::set<std::vector<uint8_t>> distinct;
  for (int64_t i = 0; i < 50; ++i) distinct.insert(load(a, i));
  CHECK(distinct.size() == 50);
}

// ---------------------------------------------------------------------------------------------------------
TEST_CASE("real CIFAR-10 test split (JPEG folders from shared/)") {
  const char* shared = std::getenv("MAXGRAD_SHARED");
  const fs::path tarball = shared ? fs::path(shared) / "data/cifar10/test.tar.gz" : fs::path();
  if (!shared || !fs::exists(tarball)) {
    MESSAGE("skipped: set MAXGRAD_SHARED to the shared/ folder holding data/cifar10/test.tar.gz");
    return;
  }
  TempDir tmp;
  const std::string cmd = "tar -xzf '" + tarball.string() + "' -C '" + tmp.path.string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const ImageFolder folder(tmp / "test");
  CHECK(folder.size() == 10000);
  CHECK(folder.skipped() == 0);
  REQUIRE(folder.classes().size() == 10);
  CHECK(folder.classes() == cifar10_classes());
  CHECK(folder.label(3000) == 3);  // files 3000..3999 are the 'cat' folder
  CHECK(fs::path(folder.path(3000)).parent_path().filename() == "cat");

  // The channel mean of the test split is within 0.01 of the published training mean.
  const ImageSet mem = to_memory(folder);
  double sum[3] = {0, 0, 0};
  for (int64_t i = 0; i < mem.size(); ++i)
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) sum[c] += mem.image(i)[c * 1024 + p];
  for (int c = 0; c < 3; ++c) {
    const double mean = sum[c] / (255.0 * 1024.0 * static_cast<double>(mem.size()));
    CAPTURE(c);
    CAPTURE(mean);
    CHECK(std::abs(mean - kCifar10Norm.mean[c]) < 0.01);
  }
}
