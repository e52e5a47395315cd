// Modular-arithmetic datasets: operation names, label tables and token tensors.
#include "grok/dataset.h"

#include <algorithm>
#include <array>

#include "core/error.h"
#include "core/factories.h"

namespace tg::grok {

namespace {

struct OperationInfo {
  Operation op;
  const char* name;
};
constexpr std::array<OperationInfo, 10> kOperations = {{
    {Operation::Add, "add"},
    {Operation::Sub, "sub"},
    {Operation::Mul, "mul"},
    {Operation::Div, "div"},
    {Operation::X2Y2, "x2y2"},
    {Operation::X2XYY2, "x2xyy2"},
    {Operation::X2XYY2X, "x2xyy2x"},
    {Operation::X3XY, "x3xy"},
    {Operation::X3XY2Y, "x3xy2y"},
    {Operation::S5, "s5"},
}};

// Operands are below p ≤ kMaxModulus, so every product of two reduced values fits in int64.
int64_t mod(int64_t x, int64_t p) { return ((x % p) + p) % p; }

int64_t power_mod(int64_t base, int64_t exponent, int64_t p) {
  int64_t result = 1;
  base = mod(base, p);
  for (; exponent > 0; exponent >>= 1) {
    if (exponent & 1) result = result * base % p;
    base = base * base % p;
  }
  return result;
}

int64_t arithmetic_label(Operation op, int64_t a, int64_t b, int64_t p) {
  const int64_t a2 = a * a % p, ab = a * b % p, b2 = b * b % p;
  switch (op) {
    case Operation::Add: return (a + b) % p;
    case Operation::Sub: return mod(a - b, p);
    case Operation::Mul: return ab;
    case Operation::Div: return a * power_mod(b, p - 2, p) % p;  // Fermat: b⁻¹ = b^(p-2)
    case Operation::X2Y2: return (a2 + b2) % p;
    case Operation::X2XYY2: return (a2 + ab + b2) % p;
    case Operation::X2XYY2X: return (a2 + ab + b2 + a) % p;
    case Operation::X3XY: return (a2 * a % p + ab) % p;
    case Operation::X3XY2Y: return (a2 * a % p + a * b2 % p + b) % p;
    case Operation::S5: break;
  }
  throw Error("make_dataset: internal: no arithmetic rule for " + operation_name(op));
}

// S5's composition table: table[a * 120 + b] = index of a∘b, with (a∘b)(i) = a[b[i]] and the
// permutations of {0..4} numbered in lexicographic order.
std::vector<int64_t> s5_table() {
  std::vector<std::array<int, 5>> perms;
  std::array<int, 5> perm = {0, 1, 2, 3, 4};
  do perms.push_back(perm);
  while (std::next_permutation(perm.begin(), perm.end()));
  auto code = [](const std::array<int, 5>& q) {  // base-5 number of a permutation
    int c = 0;
    for (int v : q) c = c * 5 + v;
    return c;
  };
  std::vector<int64_t> index_of_code(3125, -1);
  for (size_t i = 0; i < perms.size(); ++i) index_of_code[code(perms[i])] = static_cast<int64_t>(i);
  const int64_t n = static_cast<int64_t>(perms.size());
  std::vector<int64_t> table(static_cast<size_t>(n * n));
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) {
      std::array<int, 5> composed{};
      for (int i = 0; i < 5; ++i) composed[i] = perms[a][perms[b][i]];
      table[a * n + b] = index_of_code[code(composed)];
    }
  return table;
}

}  // namespace

bool is_prime(int64_t n) {
  if (n < 2) return false;
  for (int64_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

Operation parse_operation(const std::string& name) {
  std::string expected;
  for (const OperationInfo& info : kOperations) {
    if (name == info.name) return info.op;
    expected += (expected.empty() ? "" : ", ") + std::string(info.name);
  }
  throw Error(cat("unknown op '", name, "' (expected one of: ", expected, ")"));
}

std::string operation_name(Operation op) {
  for (const OperationInfo& info : kOperations)
    if (info.op == op) return info.name;
  return "?";
}

std::string task_name(Operation op, int64_t p) {
  return op == Operation::S5 ? cat(operation_name(op), " (", p, " elements)")
                             : cat(operation_name(op), " mod ", p);
}

bool Dataset::contains(int64_t pair) const {
  return std::binary_search(pairs.begin(), pairs.end(), pair);
}

int64_t Dataset::index_of(int64_t pair) const {
  const auto it = std::lower_bound(pairs.begin(), pairs.end(), pair);
  if (it == pairs.end() || *it != pair) {
    const bool in_range = pair >= 0 && pair < p * p;
    throw Error(cat(task_name(op, p), ": pair ", pair,
                    in_range ? cat(" = (", pair / p, ", ", pair % p, ") is not in the dataset")
                             : cat(" is outside [0, ", p * p, ")")));
  }
  return it - pairs.begin();
}

int64_t Dataset::label(int64_t pair) const { return labels[static_cast<size_t>(index_of(pair))]; }

Dataset make_dataset(Operation op, int64_t p) {
  Dataset data;
  data.op = op;
  if (op == Operation::S5) {
    data.p = 120;  // the argument is ignored: S5 has 120 elements
    data.labels = s5_table();
    data.pairs.resize(data.labels.size());
    for (size_t i = 0; i < data.pairs.size(); ++i) data.pairs[i] = static_cast<int64_t>(i);
    return data;
  }
  check(p >= 2, "make_dataset: ", operation_name(op), ": p must be at least 2, got ", p);
  check(p <= kMaxModulus, "make_dataset: ", operation_name(op), ": p must be at most ",
        kMaxModulus, ", got ", p);
  check(op != Operation::Div || is_prime(p), "div needs a prime p, got ", p);
  data.p = p;
  const int64_t first_b = op == Operation::Div ? 1 : 0;
  data.pairs.reserve(static_cast<size_t>(p * (p - first_b)));
  data.labels.reserve(data.pairs.capacity());
  for (int64_t a = 0; a < p; ++a)
    for (int64_t b = first_b; b < p; ++b) {
      data.pairs.push_back(a * p + b);
      data.labels.push_back(arithmetic_label(op, a, b, p));
    }
  return data;
}

int64_t vocab_size(TokenFormat format, int64_t p) {
  switch (format) {
    case TokenFormat::AB: return p;
    case TokenFormat::ABEq: return p + 1;
    case TokenFormat::AOpBEq: return p + 2;
  }
  return 0;
}

int64_t context_length(TokenFormat format) {
  switch (format) {
    case TokenFormat::AB: return 2;
    case TokenFormat::ABEq: return 3;
    case TokenFormat::AOpBEq: return 4;
  }
  return 0;
}

Tensor make_tokens(const Dataset& data, const std::vector<int64_t>& pairs, TokenFormat format) {
  const int64_t n = static_cast<int64_t>(pairs.size()), t = context_length(format);
  const int64_t p = data.p, op_token = p, eq_token = format == TokenFormat::AOpBEq ? p + 1 : p;
  std::vector<int64_t> tokens;
  tokens.reserve(static_cast<size_t>(n * t));
  for (int64_t pair : pairs) {
    data.index_of(pair);  // validates
    const int64_t a = pair / p, b = pair % p;
    switch (format) {
      case TokenFormat::AB: tokens.insert(tokens.end(), {a, b}); break;
      case TokenFormat::ABEq: tokens.insert(tokens.end(), {a, b, eq_token}); break;
      case TokenFormat::AOpBEq: tokens.insert(tokens.end(), {a, op_token, b, eq_token}); break;
    }
  }
  return from_vector(tokens, {n, t});
}

Tensor make_labels(const Dataset& data, const std::vector<int64_t>& pairs) {
  std::vector<int64_t> labels;
  labels.reserve(pairs.size());
  for (int64_t pair : pairs) labels.push_back(data.label(pair));
  return from_vector(labels, {static_cast<int64_t>(labels.size())});
}

}  // namespace tg::grok
