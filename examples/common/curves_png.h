// Training curves as a PNG, drawn pixel by pixel (lines, axes, ticks and a 3x5 bitmap font) and
// written with stb_image_write, so plotting needs no library beyond stb that the data loader uses.
//
//   +-- LOSS ---------------+  +-- ACCURACY % ---------+
//   |\  TRAIN - TEST -      |  |      __.--            |
//   | '--.__                |  |   .-'                 |
//   +-----------------------+  +-----------------------+
//     1   2   3  EPOCH           1   2   3  EPOCH
#pragma once
#include <array>
#include <string>
#include <vector>

namespace mg::cli {

struct Series {
  std::string name;  // shown in the legend (upper case A-Z; other letters are drawn as blanks)
  std::array<unsigned char, 3> rgb;
  std::vector<double> y;  // y[i] belongs to epoch i + 1
};

struct Panel {
  std::string title;
  std::vector<Series> series;
  bool from_zero = true;  // the y axis starts at 0 (else at the smallest value)
  double y_max = 0;       // fixed top of the y axis (e.g. 100 for a percentage); 0: from the data
};

// Panels side by side; written to a temporary file and renamed, so a reader never sees half a PNG.
// Throws mg::Error naming the path when it cannot be written.
void write_curves_png(const std::string& path, const std::vector<Panel>& panels);

}  // namespace mg::cli
