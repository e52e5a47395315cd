// CUDA neural-network primitives against the CPU backend: softmax and log-softmax with their
// backwards along every axis, fused cross-entropy and its backward, and the index primitives
// (index_select, index_add, one_hot). Each is called on the backend directly and through the
// autograd ops (softmax, log_softmax, cross_entropy, embedding, one_hot), forward and backward,
// on awkward shapes, strided views, float32 and float64 (and every dtype for the index
// primitives), with out-of-range indices and targets giving the CPU's messages. Every case skips
// visibly without a GPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda_compare.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/index_add_sorted.h"
#include "kernels/cuda/stream.h"
#include "kernels/dispatch.h"
#include "seeded_tensors.h"
#include "test_cuda_support.h"
#include "test_support.h"
#include "tinygrok.h"

using namespace tg;
using Catch::Matchers::Contains;
using tg::testing::check_matches_cpu;
using tg::testing::error_of;
using tg::testing::random_indices;
using tg::testing::random_normal;
using tg::testing::tolerance_for;

namespace {

const Device kGpu = Device::cuda(0);

// `got`, a fresh (so contiguous) GPU tensor, against `want` (cuda_compare.h).
void check_close(const Tensor& got, const Tensor& want, double tolerance) {
  CHECK(got.is_contiguous());
  check_matches_cpu(got, want, tolerance);
}


// The sorted index_add's order (kernels/cuda/index_add_sorted.h), on the host: each row's entries
// in increasing position, cut where the tiles of kScatterGroup entries of the list sorted by row
// end; each piece summed from 0 in order, in T, then the pieces from 0 in order.
Tensor grouped_index_add(const Tensor& src_in, const Tensor& index_in, int64_t rows) {
  const Tensor src = src_in.contiguous();
  const std::vector<int64_t> index = index_in.contiguous().to_vector<int64_t>();
  const auto n = static_cast<int64_t>(index.size());
  Shape out_shape{rows};
  out_shape.insert(out_shape.end(), src.shape().begin() + index_in.dim(), src.shape().end());
  const int64_t width = numel(out_shape) / std::max<int64_t>(rows, 1);
  Tensor out;
  dispatch(src.dtype(), [&]<typename T>() {
    const std::vector<T> v = src.to_vector<T>();
    std::vector<int64_t> start(static_cast<size_t>(rows) + 1, 0), seen(static_cast<size_t>(rows));
    for (int64_t r : index) ++start[static_cast<size_t>(r) + 1];
    for (size_t r = 0; r < static_cast<size_t>(rows); ++r) start[r + 1] += start[r];
    std::vector<T> sums(static_cast<size_t>(rows * width), T(0));
    std::vector<T> piece(static_cast<size_t>(rows * width), T(0));
    std::vector<int64_t> piece_tile(static_cast<size_t>(rows), -1);
    const auto flush = [&](int64_t r) {
      for (int64_t c = 0; c < width; ++c) {
        sums[static_cast<size_t>(r * width + c)] += piece[static_cast<size_t>(r * width + c)];
        piece[static_cast<size_t>(r * width + c)] = T(0);
      }
    };
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = index[static_cast<size_t>(i)];
      const int64_t tile = (start[static_cast<size_t>(r)] + seen[static_cast<size_t>(r)]++) /
                           cuda::kScatterGroup;
      if (piece_tile[static_cast<size_t>(r)] != tile) {
        if (piece_tile[static_cast<size_t>(r)] >= 0) flush(r);
        piece_tile[static_cast<size_t>(r)] = tile;
      }
      for (int64_t c = 0; c < width; ++c)
        piece[static_cast<size_t>(r * width + c)] += v[static_cast<size_t>(i * width + c)];
    }
    for (int64_t r = 0; r < rows; ++r)
      if (piece_tile[static_cast<size_t>(r)] >= 0) flush(r);
    out = from_vector(sums, {rows * width}).reshape(out_shape);
  });
  return out;
}

// Chooses index_add's path on the GPU (kernels/cuda/index_add_sorted.h) while it lives.
class IndexAddPath {
 public:
  explicit IndexAddPath(bool sorted) : before_(cuda::sorted_index_add_enabled()) {
    cuda::set_sorted_index_add(sorted);
  }
  ~IndexAddPath() { cuda::set_sorted_index_add(before_); }
  IndexAddPath(const IndexAddPath&) = delete;
  IndexAddPath& operator=(const IndexAddPath&) = delete;

 private:
  bool before_;
};

// A GPU index_add's result `got` against the host: with the tiled kernel, the CPU's index_add bit
// for bit; with the sorted path, its own order's sums bit for bit (grouped_index_add) and the
// CPU's within rounding.
void check_index_add(const Tensor& got, const Tensor& src, const Tensor& index, int64_t rows,
                     bool sorted) {
  const Tensor cpu = backend_for(Device::cpu()).index_add(src, index, rows);
  if (!sorted) {
    check_close(got, cpu, 0);
    return;
  }
  check_close(got, grouped_index_add(src, index, rows), 0);
  check_close(got, cpu, is_floating(src.dtype()) ? tolerance_for(src.dtype()) : 0);
}


using View = std::function<Tensor(const Tensor&)>;

struct ViewCase {
  std::string name;
  Shape base;  // the shape of the tensor the view is taken of
  View view;
};

// Awkward shapes, single elements and lines longer than a warp, and views that are not
// contiguous: transposed, permuted and sliced with steps.
std::vector<ViewCase> softmax_cases() {
  const View same = [](const Tensor& t) { return t; };
  return {
      {"[1]", {1}, same},
      {"[7]", {7}, same},
      {"[257]", {257}, same},
      {"[3, 33]", {3, 33}, same},
      {"[2, 5, 7]", {2, 5, 7}, same},
      {"[4, 1, 3]", {4, 1, 3}, same},
      {"[2, 3, 70]", {2, 3, 70}, same},
      {"[2, 1031]", {2, 1031}, same},
      {"transposed [33, 3]", {3, 33}, [](const Tensor& t) { return t.t(); }},
      {"permuted [7, 2, 5]", {2, 5, 7}, [](const Tensor& t) { return t.permute({2, 0, 1}); }},
      {"stepped slices of [9, 40]", {9, 40},
       [](const Tensor& t) { return t.slice(0, 1, 9, 2).slice(1, 0, 40, 3); }},
      {"empty [0, 5]", {0, 5}, same},
  };
}

}  // namespace

// ---- softmax ------------------------------------------------------------------------------------

TEST_CASE("cuda softmax: softmax and log_softmax equal the CPU's along every axis", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  uint32_t seed = 1;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (bool log : {false, true}) {
      for (const ViewCase& vc : softmax_cases()) {
        const Tensor base = random_normal(vc.base, dtype, seed++, 3);
        const Tensor x = vc.view(base), xg = vc.view(base.to(kGpu));
        const Tensor dy_base = random_normal(vc.base, dtype, seed++);
        const Tensor dy = vc.view(dy_base), dyg = vc.view(dy_base.to(kGpu));
        for (int axis = 0; axis < x.dim(); ++axis) {
          INFO(dtype_name(dtype) << (log ? " log_softmax " : " softmax ") << vc.name << " axis "
                                 << axis);
          const Tensor y = cpu.softmax(x, axis, log);
          check_close(gpu.softmax(xg, axis, log), y, tolerance_for(dtype));
          // The backward from the CPU's y (contiguous) and from a strided copy of it, with a
          // strided dy.
          const Tensor yg = y.to(kGpu);
          check_close(gpu.softmax_backward(yg, dyg, axis, log),
                      cpu.softmax_backward(y, dy, axis, log), tolerance_for(dtype));
          if (y.dim() >= 2) {
            const Tensor yt = y.t().contiguous(), ygt = yg.t().contiguous();
            check_close(gpu.softmax_backward(ygt.t(), dyg, axis, log),
                        cpu.softmax_backward(yt.t(), dy, axis, log), tolerance_for(dtype));
          }
        }
      }
    }
  }
}

TEST_CASE("cuda softmax: large, equal and infinite inputs", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (bool log : {false, true}) {
      INFO(dtype_name(dtype) << (log ? " log_softmax" : " softmax"));
      // Logits near 1000: exp would overflow without the maximum subtracted.
      const Tensor big = random_normal({5, 77}, dtype, 11, 2, 1000);
      check_close(gpu.softmax(big.to(kGpu), 1, log), cpu.softmax(big, 1, log),
                  tolerance_for(dtype));
      // Equal values: a uniform distribution.
      const Tensor flat = full({3, 40}, 2.5, dtype);
      check_close(gpu.softmax(flat.to(kGpu), 1, log), cpu.softmax(flat, 1, log),
                  tolerance_for(dtype));
      // -inf entries get probability 0 (log-probability -inf), as on the CPU.
      const Tensor masked =
          from_vector<double>({0.5, -INFINITY, 1.5, -INFINITY, 2.0, 0.0}, {2, 3}).to(dtype);
      const std::vector<double> got =
          gpu.softmax(masked.to(kGpu), 1, log).to(Device::cpu()).to_vector<double>();
      const std::vector<double> want = cpu.softmax(masked, 1, log).to_vector<double>();
      for (size_t i = 0; i < want.size(); ++i) {
        INFO("element " << i);
        if (std::isinf(want[i])) CHECK(got[i] == want[i]);
        else CHECK(std::abs(got[i] - want[i]) <= 1e-6 * std::max(1.0, std::abs(want[i])));
      }
    }
  }
  // Only float dtypes, as on the CPU.
  const Tensor ints = zeros({2, 3}, DType::Int64);
  CHECK(error_of([&] { gpu.softmax(ints.to(kGpu), 1, false); }) ==
        error_of([&] { cpu.softmax(ints, 1, false); }));
  CHECK_THAT(error_of([&] { gpu.softmax(ints.to(kGpu), 1, false); }),
             Contains("softmax: not defined for int64"));
}

TEST_CASE("cuda softmax: the autograd ops, forward and backward, equal the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 200;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (bool log : {false, true}) {
      for (const ViewCase& vc : softmax_cases()) {
        const Tensor base = random_normal(vc.base, dtype, seed++, 2);
        const Tensor w = random_normal(vc.view(base).shape(), dtype, seed++);
        for (int64_t axis : {int64_t{0}, int64_t{-1}}) {
          INFO(dtype_name(dtype) << (log ? " log_softmax " : " softmax ") << vc.name << " axis "
                                 << axis);
          // loss = sum(w * softmax(view(x))): the gradient reaches x through the view.
          auto run = [&](Device device) {
            Tensor x = base.to(device).detach();
            x.requires_grad_();
            const Tensor y = log ? log_softmax(vc.view(x), axis) : softmax(vc.view(x), axis);
            sum(mul(y, w.to(device))).backward();
            return std::pair<Tensor, Tensor>{y.detach(), x.grad()};
          };
          const auto [y, dx] = run(Device::cpu());
          const auto [yg, dxg] = run(kGpu);
          check_close(yg.contiguous(), y, tolerance_for(dtype));
          check_close(dxg.contiguous(), dx, tolerance_for(dtype));
        }
      }
    }
  }
}

// ---- cross-entropy ------------------------------------------------------------------------------

TEST_CASE("cuda cross_entropy: loss, shifted log-sum-exp and backward equal the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  struct Case {
    int64_t rows, classes;
    double shift;       // added to every logit: near 1000 the shifted log-sum-exp matters
    bool transposed;    // logits a transposed view of [C, N]
    bool strided_rows;  // targets and row gradients every other element of longer vectors
  };
  const std::vector<Case> cases = {{1, 1, 0, false, false},    {7, 33, 0, false, false},
                                   {33, 113, 0, false, true},  {5, 257, 0, true, false},
                                   {129, 7, 1000, false, false}, {37, 114, 1000, true, true},
                                   {0, 5, 0, false, false}};
  uint32_t seed = 400;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Case& c : cases) {
      INFO(dtype_name(dtype) << " [" << c.rows << ", " << c.classes << "] shift " << c.shift
                             << (c.transposed ? " transposed" : "")
                             << (c.strided_rows ? " strided rows" : ""));
      const Shape stored = c.transposed ? Shape{c.classes, c.rows} : Shape{c.rows, c.classes};
      const Tensor base = random_normal(stored, dtype, seed++, 3, c.shift);
      const View logits_view = [&](const Tensor& t) { return c.transposed ? t.t() : t; };
      const int64_t step = c.strided_rows ? 2 : 1;
      const Tensor targets_base = random_indices({c.rows * step}, 0, c.classes, seed++);
      const Tensor grad_base = random_normal({c.rows * step}, dtype, seed++);
      const View rows_view = [&](const Tensor& t) { return t.slice(0, 0, c.rows * step, step); };

      const Tensor logits = logits_view(base), logits_g = logits_view(base.to(kGpu));
      const Tensor targets = rows_view(targets_base), targets_g = rows_view(targets_base.to(kGpu));
      Tensor loss, shifted, loss_g, shifted_g;
      cpu.cross_entropy(logits, targets, loss, shifted);
      gpu.cross_entropy(logits_g, targets_g, loss_g, shifted_g);
      check_close(loss_g, loss, tolerance_for(dtype));
      check_close(shifted_g, shifted, tolerance_for(dtype));

      const Tensor grad = rows_view(grad_base), grad_g = rows_view(grad_base.to(kGpu));
      check_close(gpu.cross_entropy_backward(logits_g, targets_g, shifted.to(kGpu), grad_g),
                  cpu.cross_entropy_backward(logits, targets, shifted, grad),
                  tolerance_for(dtype));
    }
  }
}

TEST_CASE("cuda cross_entropy: the autograd op, every reduction, equals the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 600;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      INFO(dtype_name(dtype) << " reduction " << static_cast<int>(reduction));
      const Tensor base = random_normal({41, 113}, dtype, seed++, 2);
      const Tensor targets = random_indices({41}, 0, 113, seed++);
      const Tensor w = random_normal({41}, dtype, seed++);
      auto run = [&](Device device) {
        Tensor logits = base.to(device).detach();
        logits.requires_grad_();
        const Tensor loss = cross_entropy(logits, targets.to(device), reduction);
        (reduction == Reduction::None ? sum(mul(loss, w.to(device))) : loss).backward();
        return std::pair<Tensor, Tensor>{loss.detach(), logits.grad()};
      };
      const auto [loss, dlogits] = run(Device::cpu());
      const auto [loss_g, dlogits_g] = run(kGpu);
      check_close(loss_g.contiguous(), loss, tolerance_for(dtype));
      check_close(dlogits_g.contiguous(), dlogits, tolerance_for(dtype));
    }
  }
}

TEST_CASE("cuda cross_entropy: out-of-range targets give the CPU's error", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  const Tensor logits = random_normal({6, 5}, DType::Float32, 700);
  for (const std::vector<int64_t>& t : std::vector<std::vector<int64_t>>{
           {0, 1, 5, 2, -1, 9}, {0, 1, 2, 3, 4, -1}, {-3, 0, 0, 0, 0, 0}}) {
    const Tensor targets = from_vector(t);
    Tensor loss, shifted;
    const std::string want = error_of([&] { cpu.cross_entropy(logits, targets, loss, shifted); });
    const std::string got =
        error_of([&] { gpu.cross_entropy(logits.to(kGpu), targets.to(kGpu), loss, shifted); });
    CHECK_THAT(want, Contains("is out of range [0, 5)"));
    CHECK(got == want);
  }
  CHECK(error_of([&] {
          cross_entropy(logits.to(kGpu), from_vector<int64_t>({0, 1, 2, 3, 4, 5}).to(kGpu));
        }) == "cross_entropy: target 5 at row 5 is out of range [0, 5)");
  // Only float logits, as on the CPU.
  const Tensor ints = zeros({2, 3}, DType::Int64);
  const Tensor targets = zeros({2}, DType::Int64);
  Tensor loss, shifted;
  CHECK(error_of([&] { gpu.cross_entropy(ints.to(kGpu), targets.to(kGpu), loss, shifted); }) ==
        error_of([&] { cpu.cross_entropy(ints, targets, loss, shifted); }));
}

// ---- index_select, index_add, one_hot -----------------------------------------------------------

TEST_CASE("cuda index_select and index_add, by either path, agree with the CPU for every dtype",
          "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  struct Case {
    std::string name;
    Shape table;  // [V, ...]
    Shape index;
    bool transposed_table, strided_index;
  };
  const std::vector<Case> cases = {
      {"[7, 5] by [9]", {7, 5}, {9}, false, false},
      {"[1, 1] by [4]", {1, 1}, {4}, false, false},
      {"[33, 2, 3] by [3, 4]", {33, 2, 3}, {3, 4}, false, false},
      {"[257] by [33]", {257}, {33}, false, true},
      {"[13, 40] by 0-d", {13, 40}, {}, false, false},
      {"transposed [6, 11] by [2, 5]", {6, 11}, {2, 5}, true, true},
      {"[7, 5] by [0]", {7, 5}, {0}, false, false},
      {"[7, 0] by [3]", {7, 0}, {3}, false, false},
      // Several tiles of 256 indices and two blocks of 256 columns per row.
      {"[20, 300] by [700]", {20, 300}, {700}, false, false},
      {"transposed [9, 260] by [2, 300]", {9, 260}, {2, 300}, true, true},
  };
  uint32_t seed = 800;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Case& c : cases) {
      INFO(dtype_name(dtype) << " " << c.name);
      // The table, perhaps as the transpose of a contiguous [.., V].
      Shape stored = c.table;
      if (c.transposed_table) std::reverse(stored.begin(), stored.end());
      const Tensor table_base = random_normal(stored, DType::Float64, seed++, 4).to(dtype);
      const View table_view = [&](const Tensor& t) { return c.transposed_table ? t.t() : t; };
      const Tensor table = table_view(table_base), table_g = table_view(table_base.to(kGpu));
      // The index, perhaps every other element of a longer one.
      const int64_t rows = c.table[0];
      Shape index_stored = c.index;
      if (c.strided_index) index_stored.back() *= 2;
      const Tensor index_base = random_indices(index_stored, 0, rows, seed++);
      const View index_view = [&](const Tensor& t) {
        return c.strided_index ? t.slice(-1, 0, index_stored.back(), 2) : t;
      };
      const Tensor index = index_view(index_base), index_g = index_view(index_base.to(kGpu));

      // Gathering copies values: exact.
      const Tensor gathered = cpu.index_select(table, index);
      check_close(gpu.index_select(table_g, index_g), gathered, 0);

      // The scatter-add of a src shaped like the gathered rows, by either path
      // (check_index_add). Rows 1 and rows + 3: rows no index points at stay 0.
      const Tensor src_base = random_normal(gathered.shape(), DType::Float64, seed++, 4).to(dtype);
      for (bool sorted : {false, true}) {
        INFO((sorted ? "sorted" : "tiled") << " index_add");
        const IndexAddPath path(sorted);
        for (int64_t out_rows : {rows, rows + 3}) {
          INFO("index_add into " << out_rows << " rows");
          check_index_add(gpu.index_add(src_base.to(kGpu), index_g, out_rows), src_base, index,
                          out_rows, sorted);
        }
        if (gathered.dim() >= 2 && gathered.numel() > 0) {  // a strided src
          const Tensor src_t = src_base.transpose(0, -1).contiguous();
          check_index_add(gpu.index_add(src_t.to(kGpu).transpose(0, -1), index_g, rows),
                          src_t.transpose(0, -1), index, rows, sorted);
        }
      }
    }
  }
  // Many contributions to few rows (long sums), float32: the two paths' orders differ, and so
  // (almost surely) do their bits.
  const Tensor index = random_indices({3000}, 0, 3, 900);
  const Tensor src = random_normal({3000, 5}, DType::Float32, 901);
  for (bool sorted : {false, true}) {
    INFO((sorted ? "sorted" : "tiled") << " index_add");
    const IndexAddPath path(sorted);
    check_index_add(gpu.index_add(src.to(kGpu), index.to(kGpu), 3), src, index, 3, sorted);
  }
  CHECK(grouped_index_add(src, index, 3).to_vector<float>() !=
        cpu.index_add(src, index, 3).to_vector<float>());
}

// The row indices of the nanda step's key and value tables (kv: 3 positions of each example into
// 3 x 114 (position, token) rows, the last position's token always "=": one row of them all) and
// of its query table (q: the last position's row), on the host.
struct NandaTableRows {
  static constexpr int64_t kVocab = 114, kRows = 3 * kVocab;
  Tensor kv, q;
  explicit NandaTableRows(int64_t batch, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int64_t> kv_rows(static_cast<size_t>(3 * batch));
    std::vector<int64_t> q_rows(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < 2; ++t)
        kv_rows[static_cast<size_t>(3 * b + t)] = t * kVocab + static_cast<int64_t>(rng() % 113);
      kv_rows[static_cast<size_t>(3 * b + 2)] = 2 * kVocab + 113;
      q_rows[static_cast<size_t>(b)] = 2 * kVocab + 113;
    }
    kv = from_vector(kv_rows);
    q = from_vector(q_rows);
  }
};

// The sorted path on the nanda step's table rows (3830 examples; the "=" row takes them all), at
// widths below, at and past a block of 128 columns; with the tables' four scatter-adds in one
// call, two of them through each index array (one sort each).
TEST_CASE("cuda index_add: the sorted path on the nanda step's table rows", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  auto& gpu = static_cast<cuda::CudaBackend&>(backend_for(kGpu));
  const IndexAddPath path(true);
  const int64_t batch = 3830, rows = NandaTableRows::kRows;
  const NandaTableRows table_rows(batch, 1300);
  const Tensor &kv_rows = table_rows.kv, &q_rows = table_rows.q;
  const Tensor kv_rows_g = kv_rows.to(kGpu), q_rows_g = q_rows.to(kGpu);
  uint32_t seed = 1301;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (int64_t width : {1, 128, 130}) {
      INFO(dtype_name(dtype) << " width " << width);
      const Tensor dq = random_normal({batch, width}, dtype, seed++);
      const Tensor dk = random_normal({3 * batch, width}, dtype, seed++);
      const Tensor dv = random_normal({3 * batch, 2 * width}, dtype, seed++);
      const Tensor dres = random_normal({batch, width}, dtype, seed++);
      const std::vector<Tensor> sums = gpu.index_add_together({{dq.to(kGpu), q_rows_g, rows},
                                                               {dk.to(kGpu), kv_rows_g, rows},
                                                               {dv.to(kGpu), kv_rows_g, rows},
                                                               {dres.to(kGpu), q_rows_g, rows}});
      REQUIRE(sums.size() == 4);
      check_index_add(sums[0], dq, q_rows, rows, true);
      check_index_add(sums[1], dk, kv_rows, rows, true);
      check_index_add(sums[2], dv, kv_rows, rows, true);
      check_index_add(sums[3], dres, q_rows, rows, true);
    }
  }
  // One index array with two row counts: two sorts.
  const Tensor src = random_normal({3 * batch, 3}, DType::Float32, seed++);
  const Tensor src_g = src.to(kGpu);
  const std::vector<Tensor> sums =
      gpu.index_add_together({{src_g, kv_rows_g, rows}, {src_g, kv_rows_g, rows + 5}});
  check_index_add(sums[0], src, kv_rows, rows, true);
  check_index_add(sums[1], src, kv_rows, rows + 5, true);
}

// Rows computed as they are read (cuda::WeightedRows): weights [n, H] times H blocks of x's rows
// sum to the bits of a buffer holding those rounded products, by the sorted path's order. The
// attention backward's three uses: x rows through another index array (its key table: q rows),
// rows n / group with every head reading the same x row (its value table, heads summed) or each
// head its own block (heads apart); next to a scatter-add of a buffer in the same call. Head
// widths 1, 32 (nanda's) and 33; the nanda step's rows at a cut batch, and a shuffled index.
TEST_CASE("cuda index_add: weighted rows sum the bits of their products' buffer", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  const int64_t batch = 301, keys = 3, heads = 4, rows = NandaTableRows::kRows;
  const NandaTableRows nanda(batch, 1310);
  std::vector<int64_t> shuffled(static_cast<size_t>(batch * keys));
  std::mt19937 rng(1311);
  for (int64_t& r : shuffled) r = static_cast<int64_t>(rng() % 7);  // few rows, long runs
  const Tensor q_rows = nanda.q, q_rows_g = q_rows.to(kGpu);
  const cudaStream_t stream = cuda::current_stream(kGpu.index);
  uint32_t seed = 1312;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (bool nanda_rows : {true, false}) {
      const Tensor index = nanda_rows ? nanda.kv : from_vector(shuffled);
      const Tensor index_g = index.to(kGpu);
      for (int64_t width : {1, 32, 33}) {
        for (int use = 0; use < 3; ++use) {  // keys, values (heads summed), values (heads apart)
          INFO(dtype_name(dtype) << " head width " << width << " use " << use
                                 << (nanda_rows ? ", nanda's rows" : ", shuffled rows"));
          const int64_t n = batch * keys;
          const Tensor weights = random_normal({n, heads}, dtype, seed++);
          // x and the row of it that entry m = n / keys reads: a q table row, or example m's.
          const int64_t x_rows_count = use == 0 ? rows : batch;
          const int64_t row_stride = use == 1 ? width : heads * width;
          const int64_t head_stride = use == 1 ? 0 : width;
          const Tensor x = random_normal({x_rows_count, row_stride}, dtype, seed++);
          const std::vector<double> w = weights.to_vector<double>(), xv = x.to_vector<double>();
          const std::vector<int64_t> qr = q_rows.to_vector<int64_t>();
          std::vector<double> products(static_cast<size_t>(n * heads * width));
          for (int64_t i = 0; i < n; ++i) {
            const int64_t row = use == 0 ? qr[static_cast<size_t>(i / keys)] : i / keys;
            for (int64_t h = 0; h < heads; ++h)
              for (int64_t e = 0; e < width; ++e)  // exact in double; rounded once by .to()
                products[static_cast<size_t>((i * heads + h) * width + e)] =
                    w[static_cast<size_t>(i * heads + h)] *
                    xv[static_cast<size_t>(row * row_stride + h * head_stride + e)];
          }
          const Tensor buffer = from_vector(products, {n, heads * width}).to(dtype);
          const Tensor other = random_normal({batch, 5}, dtype, seed++);  // a buffer's add
          Tensor got = Tensor::empty({rows, heads * width}, dtype, kGpu);
          Tensor got_other = Tensor::empty({rows, 5}, dtype, kGpu);
          const cuda::WeightedRows weighted{weights.to(kGpu), x.to(kGpu),
                                            use == 0 ? q_rows_g : Tensor(), keys, heads, width,
                                            row_stride, head_stride};
          cuda::sorted_index_add({{other.to(kGpu), q_rows_g, got_other, rows},
                                  {Tensor(), index_g, got, rows, weighted}},
                                 stream);
          check_index_add(got, buffer, index, rows, true);
          check_index_add(got_other, other, q_rows, rows, true);
        }
      }
    }
  }
  // What sorted_index_add refuses: weights of another count, x too short for its rows, heads
  // that do not make the output's width, a stride backwards.
  const Tensor index_g = nanda.kv.to(kGpu);
  const int64_t n = batch * keys;
  Tensor out = Tensor::empty({rows, heads * 2}, DType::Float32, kGpu);
  const Tensor x = zeros({batch, 2}, DType::Float32, kGpu);
  const Tensor weights = zeros({n, heads}, DType::Float32, kGpu);
  const Tensor short_weights = zeros({n - 1, heads}, DType::Float32, kGpu);
  const Tensor short_x = zeros({batch - 1, 2}, DType::Float32, kGpu);
  CHECK_NOTHROW(cuda::sorted_index_add(
      {{Tensor(), index_g, out, rows, {weights, x, Tensor(), keys, heads, 2, 2, 0}}}, stream));
  for (const cuda::WeightedRows& bad :
       {cuda::WeightedRows{short_weights, x, Tensor(), keys, heads, 2, 2, 0},
        cuda::WeightedRows{weights, short_x, Tensor(), keys, heads, 2, 2, 0},
        cuda::WeightedRows{weights, x, Tensor(), keys, heads, 3, 2, 0},
        cuda::WeightedRows{weights, x, Tensor(), keys, heads, 2, -2, 0}})
    CHECK_THROWS_WITH(cuda::sorted_index_add({{Tensor(), index_g, out, rows, bad}}, stream),
                      Catch::Contains("does not take"));
}

// Which scatter-adds the sorted path takes: its count table (a cell per row for every 256
// indices) stays under 2^22 cells, and a launch's grid holds the columns.
TEST_CASE("cuda index_add: the sorted path's limits", "[cuda]") {
  CHECK(cuda::sorted_index_add_fits(1, 1, 1));
  CHECK_FALSE(cuda::sorted_index_add_fits(0, 5, 3));
  CHECK_FALSE(cuda::sorted_index_add_fits(7, 0, 3));
  CHECK_FALSE(cuda::sorted_index_add_fits(7, 5, 0));
  CHECK(cuda::sorted_index_add_fits(256 * 4096, 1024, 3));
  CHECK_FALSE(cuda::sorted_index_add_fits(256 * 4096 + 1, 1024, 3));
  CHECK_FALSE(cuda::sorted_index_add_fits(256 * 4096, 1025, 3));
  CHECK(cuda::sorted_index_add_fits(10, 5, int64_t{128} * 65535));
  CHECK_FALSE(cuda::sorted_index_add_fits(10, 5, int64_t{128} * 65535 + 1));
}

// index_add_together: up to four scatter-adds in one call (the attention backward's q, k, value
// and residual tables), each as one index_add by the same path (check_index_add), whatever their
// rows, widths and lengths; an empty one is left out, and one with no indices is zeros.
TEST_CASE("cuda index_add_together equals one index_add each, by either path", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  auto& gpu = static_cast<cuda::CudaBackend&>(backend_for(kGpu));
  struct Add {
    Shape src;
    int64_t rows;
  };
  const std::vector<Add> adds = {{{700, 300}, 20}, {{45, 4, 8}, 9}, {{0, 33}, 5}, {{60, 7}, 60}};
  uint32_t seed = 950;
  std::vector<Tensor> srcs, indices;
  std::vector<cuda::CudaBackend::IndexAdd> on_gpu;
  for (const Add& a : adds) {
    srcs.push_back(random_normal(a.src, DType::Float32, seed++, 4));
    indices.push_back(random_indices({a.src[0]}, 0, a.rows, seed++));
    on_gpu.push_back({srcs.back().to(kGpu), indices.back().to(kGpu), a.rows});
  }
  for (bool sorted : {false, true}) {
    INFO((sorted ? "sorted" : "tiled") << " index_add");
    const IndexAddPath path(sorted);
    const std::vector<Tensor> sums = gpu.index_add_together(on_gpu);
    REQUIRE(sums.size() == adds.size());
    for (size_t t = 0; t < adds.size(); ++t) {
      INFO("scatter-add " << t);
      check_index_add(sums[t], srcs[t], indices[t], adds[t].rows, sorted);
    }
  }
  on_gpu.push_back(on_gpu.front());
  CHECK_THROWS_WITH(gpu.index_add_together(on_gpu), Catch::Contains("at most 4"));
}

TEST_CASE("cuda embedding: forward and backward through autograd equal the CPU's", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  uint32_t seed = 1000;
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& index_shape : std::vector<Shape>{{17}, {4, 9}, {}}) {
      INFO(dtype_name(dtype) << " index " << shape_str(index_shape));
      const Tensor table_base = random_normal({11, 6}, dtype, seed++);
      const Tensor index = random_indices(index_shape, 0, 11, seed++);
      Shape out_shape = index_shape;
      out_shape.push_back(6);
      const Tensor w = random_normal(out_shape, dtype, seed++);
      auto run = [&](Device device) {
        Tensor table = table_base.to(device).detach();
        table.requires_grad_();
        const Tensor out = embedding(table, index.to(device));
        sum(mul(out, w.to(device))).backward();
        return std::pair<Tensor, Tensor>{out.detach(), table.grad()};
      };
      const auto [out, grad] = run(Device::cpu());
      const auto [out_g, grad_g] = run(kGpu);
      check_close(out_g.contiguous(), out, 0);
      check_close(grad_g.contiguous(), grad, tolerance_for(dtype));
    }
  }
}

TEST_CASE("cuda one_hot equals the CPU's for every dtype", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  uint32_t seed = 1100;
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    for (const Shape& shape : std::vector<Shape>{{1}, {7}, {3, 11}, {}, {0}, {2, 0}}) {
      for (int64_t classes : {1, 5, 33}) {
        INFO(dtype_name(dtype) << " index " << shape_str(shape) << " classes " << classes);
        const Tensor index = random_indices(shape, 0, classes, seed++);
        check_close(gpu.one_hot(index.to(kGpu), classes, dtype),
                    cpu.one_hot(index, classes, dtype), 0);
        check_close(one_hot(index.to(kGpu), classes, dtype), one_hot(index, classes, dtype), 0);
      }
    }
  }
  // A strided index.
  const Tensor index = random_indices({6, 8}, 0, 9, seed++);
  check_close(gpu.one_hot(index.to(kGpu).t(), 9, DType::Float32),
              cpu.one_hot(index.t(), 9, DType::Float32), 0);
}

TEST_CASE("cuda index primitives: out-of-range indices give the CPU's errors", "[cuda]") {
  TG_REQUIRE_CUDA_DEVICE();
  Backend& cpu = backend_for(Device::cpu());
  Backend& gpu = backend_for(kGpu);
  const Tensor table = random_normal({5, 3}, DType::Float32, 1200);
  for (const std::vector<int64_t>& v : std::vector<std::vector<int64_t>>{
           {0, 4, 5, 1, -1}, {0, 1, 2, 3, -1}, {-7, 0, 9, 9, 9}, {2, 2, 2, 2, 100}}) {
    const Tensor index = from_vector(v);
    const Tensor index_g = index.to(kGpu);
    INFO("index " << index);
    const std::string select = error_of([&] { cpu.index_select(table, index); });
    CHECK_THAT(select,
               Contains("embedding: index ") && Contains("is out of range for 5 table rows"));
    CHECK(error_of([&] { gpu.index_select(table.to(kGpu), index_g); }) == select);
    CHECK(error_of([&] { embedding(table.to(kGpu), index_g); }) == select);

    const Tensor src = random_normal({5, 3}, DType::Float32, 1201);
    const std::string add = error_of([&] { cpu.index_add(src, index, 5); });
    CHECK_THAT(add, Contains("index_add: index ") && Contains("is out of range for 5 rows"));
    CHECK(error_of([&] { gpu.index_add(src.to(kGpu), index_g, 5); }) == add);

    const std::string hot = error_of([&] { cpu.one_hot(index, 5, DType::Float32); });
    CHECK_THAT(hot, Contains("one_hot: index ") && Contains("is out of range for 5 classes"));
    CHECK(error_of([&] { gpu.one_hot(index_g, 5, DType::Float32); }) == hot);
    CHECK(error_of([&] { one_hot(index_g, 5); }) == hot);
  }
  const Tensor five = from_vector<int64_t>({3, 5}).to(kGpu);
  CHECK(error_of([&] { gpu.index_select(table.to(kGpu), five); }) ==
        "embedding: index 5 at position 1 is out of range for 5 table rows");
  // An empty table has no valid index; an empty index is fine.
  const Tensor empty_table = zeros({0, 3}, DType::Float32, kGpu);
  CHECK(error_of([&] { gpu.index_select(empty_table, zeros({1}, DType::Int64, kGpu)); }) ==
        "embedding: index 0 at position 0 is out of range for 0 table rows");
  CHECK(gpu.index_select(empty_table, zeros({0}, DType::Int64, kGpu)).shape() == Shape{0, 3});
}
