#include <catch2/catch.hpp>

#include "tinygrok.h"

using namespace tg;

TEST_CASE("smoke: matmul, sum and backward") {
  Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor c = matmul(a, b);
  CHECK(c.to_vector<float>() == std::vector<float>{4, 5, 10, 11});
  c.sum().backward();
  CHECK(a.grad().to_vector<float>() == std::vector<float>{1, 1, 2, 1, 1, 2});
}
