// Index ops: embedding lookup (a gather of table rows) with its scatter-add backward, and
// one-hot encoding. Indices are inputs, never differentiated.
#include "autograd/ops/common.h"

namespace tg {

namespace {
void check_index(const char* op, const Tensor& index) {
  check(index.dtype() == DType::Int64, op, ": index must be int64, got ",
        dtype_name(index.dtype()), " of shape ", shape_str(index.shape()));
}
}  // namespace

Tensor embedding(const Tensor& table, const Tensor& index) {
  check_index("embedding", index);
  check(table.dim() >= 1, "embedding: table must have at least one dimension");
  check(table.device() == index.device(), "embedding: table on ", table.device().str(),
        ", index on ", index.device().str());
  Tensor out = backend_for(table.device()).index_select(table, index);
  if (!needs_grad({&table})) return out;
  return record(out, "EmbeddingBackward",
                [index = save(index), rows = table.size(0)](const Tensor& g) -> std::vector<Tensor> {
                  return {backend_for(g.device()).index_add(g, index, rows)};
                },
                {&table});
}

Tensor one_hot(const Tensor& index, int64_t classes, DType dtype) {
  check_index("one_hot", index);
  check(classes > 0, "one_hot: classes must be positive, got ", classes);
  return backend_for(index.device()).one_hot(index, classes, dtype);
}

}  // namespace tg
