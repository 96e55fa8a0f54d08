// Fuzzes the CIFAR-10 binary reader (data/cifar_binary.h) through its public entry point, on files:
// load_cifar10_binary(dir, test) reads test_batch.bin and, when present, batches.meta.txt.
//   byte 0       bit 7 set: batches.meta.txt is written from the next (byte 0 & 0x7f) bytes
//   the rest     test_batch.bin
// An accepted batch must hold size / 3073 images with labels 0..9 and their exact pixels.
#include <cstdint>
#include <cstring>

#include "fuzz_common.h"
#include "maxgrad/data/cifar_binary.h"

using namespace mg::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& dir = mg::fuzz::scratch_dir();
  std::filesystem::remove(dir / "batches.meta.txt");
  size_t pos = 0;
  if (size > 0 && (data[0] & 0x80)) {
    const size_t meta = std::min<size_t>(data[0] & 0x7f, size - 1);
    mg::fuzz::write_scratch("batches.meta.txt", data + 1, meta);
    pos = 1 + meta;
  } else if (size > 0) {
    pos = 1;
  }
  mg::fuzz::write_scratch("test_batch.bin", data + pos, size - pos);
  try {
    ImageSet set = load_cifar10_binary(dir.string(), CifarSplit::test);
    const size_t records = (size - pos) / kCifarRecordBytes;
    MG_FUZZ_CHECK(set.size() == static_cast<int64_t>(records) && set.classes().size() == 10);
    std::vector<uint8_t> chw(static_cast<size_t>(kCifarRecordBytes - 1));
    for (int64_t i = 0; i < set.size(); ++i) {
      const uint8_t* rec = data + pos + i * kCifarRecordBytes;
      MG_FUZZ_CHECK(set.label(i) == rec[0] && rec[0] <= 9);
      set.load(i, chw.data());
      MG_FUZZ_CHECK(std::memcmp(chw.data(), rec + 1, chw.size()) == 0);
    }
  } catch (const DataError&) {
  }
  return 0;
}
