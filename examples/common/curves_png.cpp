#include "examples/common/curves_png.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>

#include "maxgrad/core/error.h"
#include "maxgrad/nn/serialize/atomic_file.h"

// Only the writer of stb is used here; static, so it cannot clash with another copy in the program.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  // the BMP/TGA/JPEG/HDR writers stb also defines
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace mg::cli {

namespace {

using RGB = std::array<unsigned char, 3>;
constexpr RGB kBlack{0, 0, 0}, kGrey{200, 200, 200}, kWhite{255, 255, 255};

// 3x5 glyphs, one string per row, '1' = ink. Enough for numbers, percentages and upper-case words.
const std::map<char, std::array<const char*, 5>>& font() {
  static const std::map<char, std::array<const char*, 5>> f = {
      {'0', {"111", "101", "101", "101", "111"}}, {'1', {"010", "110", "010", "010", "111"}},
      {'2', {"111", "001", "111", "100", "111"}}, {'3', {"111", "001", "111", "001", "111"}},
      {'4', {"101", "101", "111", "001", "001"}}, {'5', {"111", "100", "111", "001", "111"}},
      {'6', {"111", "100", "111", "101", "111"}}, {'7', {"111", "001", "001", "010", "010"}},
      {'8', {"111", "101", "111", "101", "111"}}, {'9', {"111", "101", "111", "001", "111"}},
      {'.', {"000", "000", "000", "000", "010"}}, {'%', {"101", "001", "010", "100", "101"}},
      {'-', {"000", "000", "111", "000", "000"}}, {'A', {"010", "101", "111", "101", "101"}},
      {'B', {"110", "101", "110", "101", "110"}}, {'C', {"111", "100", "100", "100", "111"}},
      {'D', {"110", "101", "101", "101", "110"}}, {'E', {"111", "100", "110", "100", "111"}},
      {'F', {"111", "100", "110", "100", "100"}}, {'G', {"011", "100", "101", "101", "011"}},
      {'H', {"101", "101", "111", "101", "101"}}, {'I', {"111", "010", "010", "010", "111"}},
      {'J', {"001", "001", "001", "101", "010"}}, {'K', {"101", "101", "110", "101", "101"}},
      {'L', {"100", "100", "100", "100", "111"}}, {'M', {"101", "111", "111", "101", "101"}},
      {'N', {"110", "101", "101", "101", "101"}}, {'O', {"010", "101", "101", "101", "010"}},
      {'P', {"110", "101", "110", "100", "100"}}, {'Q', {"010", "101", "101", "110", "011"}},
      {'R', {"110", "101", "110", "101", "101"}}, {'S', {"011", "100", "010", "001", "110"}},
      {'T', {"111", "010", "010", "010", "010"}}, {'U', {"101", "101", "101", "101", "111"}},
      {'V', {"101", "101", "101", "101", "010"}}, {'W', {"101", "101", "111", "111", "101"}},
      {'X', {"101", "101", "010", "101", "101"}}, {'Y', {"101", "101", "010", "010", "010"}},
      {'Z', {"111", "001", "010", "100", "111"}}};
  return f;
}

struct Canvas {
  int w, h;
  std::vector<unsigned char> px;
  Canvas(int w, int h) : w(w), h(h), px(static_cast<size_t>(w * h * 3), 255) {}

  void dot(int x, int y, RGB c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    std::copy(c.begin(), c.end(), px.begin() + (static_cast<ptrdiff_t>(y) * w + x) * 3);
  }
  void fill(int x0, int y0, int x1, int y1, RGB c) {
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) dot(x, y, c);
  }
  // Bresenham's line, `thick` pixels wide.
  void line(int x0, int y0, int x1, int y1, RGB c, int thick = 1) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    for (int err = dx + dy;;) {
      fill(x0, y0, x0 + thick - 1, y0 + thick - 1, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  // Text with its top-left corner at (x, y), each font pixel `scale` pixels square. Returns the width.
  int text(int x, int y, const std::string& s, RGB c, int scale = 2) {
    int cx = x;
    for (char ch : s) {
      auto g = font().find(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
      if (g != font().end())
        for (int r = 0; r < 5; ++r)
          for (int col = 0; col < 3; ++col)
            if (g->second[static_cast<size_t>(r)][col] == '1')
              fill(cx + col * scale, y + r * scale, cx + col * scale + scale - 1, y + r * scale + scale - 1, c);
      cx += 4 * scale;
    }
    return cx - x;
  }
  static int text_width(const std::string& s, int scale = 2) { return static_cast<int>(s.size()) * 4 * scale; }
};

// A step of 1, 2 or 5 times a power of ten giving about `count` intervals over `span`.
double nice_step(double span, double count) {
  const double raw = std::max(span, 1e-12) / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw * 0.999) return m * mag;
  return 10 * mag;
}

std::string tick_label(double v, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void draw_panel(Canvas& cv, int ox, int pw, int ph, const Panel& p) {
  const int left = ox + 56, right = ox + pw - 16, bottom = ph - 44;
  // The legend, right-aligned: beside the title if it fits there, else in rows of its own under it
  // (four series, as with averaged weights, are wider than the space the title leaves).
  auto entry_width = [](const Series& s) { return Canvas::text_width(s.name) + 30; };
  int legend_width = 0;
  for (const Series& s : p.series) legend_width += entry_width(s);
  const bool beside_title = legend_width <= right - (left + Canvas::text_width(p.title) + 16);
  std::vector<std::vector<const Series*>> legend_rows(1);
  int used = 0;
  for (const Series& s : p.series) {
    if (used + entry_width(s) > right - left && !legend_rows.back().empty()) legend_rows.emplace_back(), used = 0;
    legend_rows.back().push_back(&s);
    used += entry_width(s);
  }
  constexpr int kRow = 16;
  const int legend_y = beside_title ? 12 : 12 + kRow;
  const int top = legend_y + kRow * static_cast<int>(legend_rows.size()) + 12;  // the plot, under the legend
  int n = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : p.series) {
    n = std::max(n, static_cast<int>(s.y.size()));
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (p.from_zero) lo = std::min(lo, 0.0);
  if (p.y_max > 0) hi = p.y_max;
  const double ystep = nice_step(hi - lo, 5);
  lo = std::floor(lo / ystep) * ystep;
  hi = std::max(std::ceil(hi / ystep) * ystep, lo + ystep);
  const double x_hi = std::max(n, 2);
  auto X = [&](double e) { return left + static_cast<int>(std::lround((e - 1) / (x_hi - 1) * (right - left))); };
  auto Y = [&](double v) { return bottom - static_cast<int>(std::lround((v - lo) / (hi - lo) * (bottom - top))); };

  cv.text(left, 12, p.title, kBlack);
  for (double v = lo; v <= hi + ystep * 1e-6; v += ystep) {  // horizontal grid and y ticks
    const int y = Y(v);
    cv.line(left, y, right, y, kGrey);
    cv.line(left - 5, y, left, y, kBlack);
    const std::string label = tick_label(v, ystep);
    cv.text(left - 9 - Canvas::text_width(label), y - 5, label, kBlack);
  }
  const double xstep = std::max(1.0, nice_step(x_hi - 1, 8));
  for (double e = 1; e <= x_hi + 1e-9; e += xstep) {  // x ticks at whole epochs
    const int x = X(e);
    cv.line(x, bottom, x, bottom + 5, kBlack);
    const std::string label = tick_label(e, 1);
    cv.text(x - Canvas::text_width(label) / 2, bottom + 10, label, kBlack);
  }
  cv.text(right - Canvas::text_width("EPOCH"), bottom + 26, "EPOCH", kBlack);
  cv.line(left, top, left, bottom, kBlack);  // axes
  cv.line(left, bottom, right, bottom, kBlack);

  for (size_t r = 0; r < legend_rows.size(); ++r) {
    const int y = legend_y + kRow * static_cast<int>(r);
    int x = right;
    for (auto it = legend_rows[r].rbegin(); it != legend_rows[r].rend(); ++it) {
      x -= entry_width(**it);
      cv.line(x, y + 5, x + 16, y + 5, (*it)->rgb, 3);
      cv.text(x + 22, y, (*it)->name, kBlack);
    }
  }
  // Epochs without a value (not evaluated: --eval-every) are skipped; the line joins the values around them.
  for (const Series& s : p.series)
    for (size_t i = 0, prev = SIZE_MAX; i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      const int x = X(static_cast<double>(i) + 1), y = Y(s.y[i]);
      cv.fill(x - 2, y - 2, x + 2, y + 2, s.rgb);  // a marker: one epoch alone is still visible
      if (prev != SIZE_MAX) cv.line(X(static_cast<double>(prev) + 1), Y(s.y[prev]), x, y, s.rgb, 2);
      prev = i;
    }
}

}  // namespace

void write_curves_png(const std::string& path, const std::vector<Panel>& panels) {
  constexpr int kPanelW = 440, kPanelH = 330;
  Canvas cv(kPanelW * std::max<int>(1, static_cast<int>(panels.size())), kPanelH);
  cv.fill(0, 0, cv.w - 1, cv.h - 1, kWhite);
  for (size_t i = 0; i < panels.size(); ++i) draw_panel(cv, static_cast<int>(i) * kPanelW, kPanelW, kPanelH, panels[i]);
  std::string png;
  auto append = [](void* to, void* data, int size) {
    static_cast<std::string*>(to)->append(static_cast<char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, cv.w, cv.h, 3, cv.px.data(), cv.w * 3))
    throw Error(cat("cannot encode the plot ", path));
  serialize::write_file_atomically(path, png);
}

}  // namespace mg::cli
