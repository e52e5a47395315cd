// The early-stopping study's two rules on hand-made metrics rows whose answers are known.
#include <catch2/catch.hpp>

#include <cmath>

#include "grok/analysis/early_stopping.h"
#include "test_support.h"

using namespace tg::grok;
using namespace tg::grok::analysis;
using Catch::Matchers::Contains;

namespace {
// A grokking run in miniature, one eval every 100 steps: memorised at step 200; test loss best at
// step 300 (2.0), rising until 1500, falling below that best from step 2000 on; test accuracy
// 99% from step 2500; the weight norm decays 5% per eval from step 200 until 2600, then holds.
std::vector<MetricsRow> grokking_rows() {
  std::vector<MetricsRow> rows;
  double norm = 100;
  for (int64_t step = 0; step <= 4000; step += 100) {
    MetricsRow r;
    r.step = step;
    r.train_acc = step >= 200 ? 1.0 : 0.5;
    r.test_loss = step < 300    ? 3.0
                  : step == 300 ? 2.0
                  : step < 2000 ? 2.0 + 0.001 * static_cast<double>(std::min<int64_t>(step, 1500))
                                : 1.0 / static_cast<double>(step);
    r.test_acc = step >= 2500 ? 1.0 : 0.01;
    if (step > 200 && step <= 2600) norm *= 0.95;
    r.weight_norm = norm;
    rows.push_back(r);
  }
  return rows;
}
}  // namespace

TEST_CASE("patience on test loss stops at the memorising network", "[early_stopping]") {
  const auto rows = grokking_rows();
  const StopPoint p = patience_stop(rows, 1000);
  REQUIRE(p.step == 1300);  // the best eval (300) is 1000 steps old
  REQUIRE(p.test_acc == 0.01);
  // A patience longer than the plateau never fires before the test loss improves again.
  REQUIRE(patience_stop(rows, 1800).step == -1);
  REQUIRE(patience_stop(rows, 1600).step == 1900);
  // min_delta: an improvement smaller than it does not count.
  std::vector<MetricsRow> flat = rows;
  flat[5].test_loss = flat[3].test_loss - 1e-4;
  REQUIRE(patience_stop(flat, 1000, 1e-3).step == 1300);
  REQUIRE(patience_stop(flat, 1000).step == 1500);
}

TEST_CASE("the weight-norm rule stops once compression has finished", "[early_stopping]") {
  const auto rows = grokking_rows();
  // 5% per eval: over 500 steps the norm falls by 1 - 0.95^5 = 23% until step 2600; the first
  // eval whose last 500 steps fell by less than 1% is 3100.
  const StopPoint w = weight_norm_stop(rows, 500, 0.01);
  REQUIRE(w.step == 3100);
  REQUIRE(w.test_acc == 1.0);
  // A norm that grows after memorisation is not settled either.
  std::vector<MetricsRow> growing = rows;
  for (MetricsRow& r : growing) r.weight_norm = 1e4 / r.weight_norm;
  REQUIRE(weight_norm_stop(growing, 500, 0.01).step == 3100);
  // A run that never memorised never stops by this rule.
  std::vector<MetricsRow> never = rows;
  for (MetricsRow& r : never) r.train_acc = 0.5;
  REQUIRE(weight_norm_stop(never, 500).step == -1);
}

TEST_CASE("stopping rules reject rows out of order and empty windows", "[early_stopping]") {
  auto rows = grokking_rows();
  REQUIRE_TG_ERROR(patience_stop(rows, 0), Contains("patience_stop") && Contains("positive"));
  std::swap(rows[3], rows[4]);
  REQUIRE_TG_ERROR(weight_norm_stop(rows, 100), Contains("increasing step order"));
  REQUIRE(patience_stop({}, 100).step == -1);
}
