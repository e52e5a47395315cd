// Modular-arithmetic datasets (Power et al. 2022, Nanda et al. 2023): the binary operations, the
// table of every valid pair (a, b) with its label, and the token/label tensors models read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg::grok {

// a ∘ b for a, b in [0, p), label in [0, p); all arithmetic is mod p.
enum class Operation {
  Add,      // a + b
  Sub,      // a - b
  Mul,      // a · b
  Div,      // a · b⁻¹, b ≠ 0, p prime
  X2Y2,     // a² + b²
  X2XYY2,   // a² + ab + b²
  X2XYY2X,  // a² + ab + b² + a
  X3XY,     // a³ + ab
  X3XY2Y,   // a³ + ab² + b
  S5,       // composition in the permutation group S5 (120 elements), see make_dataset
};

// "add", "sub", "mul", "div", "x2y2", "x2xyy2", "x2xyy2x", "x3xy", "x3xy2y", "s5".
Operation parse_operation(const std::string& name);
std::string operation_name(Operation op);
// How messages name a task: "add mod 97", or "s5 (120 elements)" for the group, which has no
// modulus.
std::string task_name(Operation op, int64_t p);

bool is_prime(int64_t n);

// The largest p accepted: the p² pair indices a·p + b, and the tables of them, stay small.
constexpr int64_t kMaxModulus = 46340;  // p² < 2³¹

struct Dataset {
  Operation op = Operation::Add;
  int64_t p = 0;  // the number of elements: the modulus, or 120 for s5
  std::vector<int64_t> pairs;   // a·p + b for every valid pair, ascending (b ≠ 0 for div)
  std::vector<int64_t> labels;  // labels[i] is the answer for pairs[i]

  int64_t size() const { return static_cast<int64_t>(pairs.size()); }
  bool contains(int64_t pair) const;  // a valid pair of this dataset
  int64_t index_of(int64_t pair) const;  // position in `pairs`; throws for an invalid pair
  int64_t label(int64_t pair) const;     // the answer for pair a·p + b; throws for an invalid pair
};

// Every valid pair of `op` over Z_p with its label. p must be in [2, kMaxModulus]; div needs a
// prime p. For s5 the argument p is ignored: the elements are the 120 permutations of {0..4} in
// lexicographic order (element 0 is the identity), p is 120, and the label of (a, b) is the index
// of a∘b, applying b first: (a∘b)(i) = a[b[i]]. Power et al.'s code applies a first (b[a]): its
// table is this one's transpose, the same task with the operands swapped.
Dataset make_dataset(Operation op, int64_t p);

// How an (a, b) pair becomes a token sequence.
enum class TokenFormat {
  AB,      // [a, b]: vocab p, context 2 (the one-hot MLP)
  ABEq,    // [a, b, =] with `=` the token p: vocab p+1, context 3 (Nanda)
  AOpBEq,  // [a, op, b, =] with op the token p and `=` the token p+1: vocab p+2, context 4 (Power)
};

int64_t vocab_size(TokenFormat format, int64_t p);
int64_t context_length(TokenFormat format);

// int64 [N, T] token ids for the given pairs (a·p + b), in order; T = context_length(format).
Tensor make_tokens(const Dataset& data, const std::vector<int64_t>& pairs, TokenFormat format);
// int64 [N] labels for the given pairs, in order.
Tensor make_labels(const Dataset& data, const std::vector<int64_t>& pairs);

}  // namespace tg::grok
