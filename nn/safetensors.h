// safetensors: the weights file format of Hugging Face, read and written for checkpoints.
//
// Layout: 8 bytes of little-endian u64 N, then N bytes of JSON header (padded with spaces so the
// data starts 8-byte aligned), then the raw little-endian data of every tensor, back to back:
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...,
//    "__metadata__": {"key": "string value", ...}}
// data_offsets are [begin, end) in bytes from the start of the data. tinygrok writes and reads
// the dtypes F32, F64 and I64.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tg::nn {

// Writes the tensors (CPU; any strides: their values go out in row-major order) in the given
// order, with string metadata. The file is written as path + ".tmp", flushed and fsynced, then
// renamed over `path`, so a crash never leaves a half-written file at `path`.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::string path;                                    // where it was read from
  std::vector<std::pair<std::string, Tensor>> tensors;  // in the order of their data
  std::map<std::string, std::string> metadata;

  bool contains(const std::string& name) const;
  Tensor at(const std::string& name) const;  // throws naming the file and the missing name
};

// Reads a whole file into contiguous CPU tensors. Every problem (missing or short file, header
// length past the end, invalid JSON, unknown dtype, offsets that are out of range, overlap or do
// not match shape × dtype size, truncated or trailing data) is a tg::Error naming the path.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace tg::nn
