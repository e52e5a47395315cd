// safetensors: writing (atomically, through a fsynced temporary file) and validated reading.
#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/strict_json.h"

namespace tg::nn {

// The data is copied to and from memory as is, which is the file's byte order only on a
// little-endian host (every platform tinygrok targets).
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

constexpr const char* kMetadataKey = "__metadata__";

// Every message starts "checkpoint PATH: ": these files are the run's checkpoints.
std::string where(const std::string& path) { return "checkpoint " + path + ": "; }

const char* dtype_tag(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
  }
  return "?";
}

bool parse_dtype_tag(const std::string& tag, DType* dtype) {
  if (tag == "F32") *dtype = DType::Float32;
  else if (tag == "F64") *dtype = DType::Float64;
  else if (tag == "I64") *dtype = DType::Int64;
  else return false;
  return true;
}

// A file descriptor that closes itself.
class File {
 public:
  File(const std::string& path, int flags, mode_t mode = 0)
      : fd_(::open(path.c_str(), flags, mode)) {}
  ~File() { close(); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  int close() {
    const int rc = fd_ >= 0 ? ::close(fd_) : 0;
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string os_error() { return std::strerror(errno); }

// write(2) until every byte is out; false with errno set on failure.
bool write_all(int fd, const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// pread(2) until `size` bytes are in; the number read (less at end of file), or -1 on error.
int64_t read_at(int fd, void* data, size_t size, uint64_t offset) {
  char* bytes = static_cast<char*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, bytes + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<int64_t>(done);
}

// Makes the rename itself durable; best effort (some file systems refuse to fsync a directory).
void sync_directory_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  File d(dir, O_RDONLY | O_DIRECTORY);
  if (d.is_open()) ::fsync(d.fd());
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // The header: __metadata__ first, then the tensors in the given order, data back to back.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::set<std::string> names;
  std::vector<Tensor> dense;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    check(!name.empty() && name != kMetadataKey, where(path), "invalid tensor name '", name, "'");
    check(names.insert(name).second, where(path), "tensor name '", name, "' appears twice");
    check(tensor.defined(), where(path), "tensor '", name, "' is undefined");
    check(tensor.device().is_cpu(), where(path), "tensor '", name, "' is on ",
          tensor.device().str(), "; move it to the CPU before saving");
    dense.push_back(contiguous_copy_if_needed(tensor));  // row-major values
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * dtype_size(tensor.dtype());
    header[name] = {{"dtype", dtype_tag(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));

  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& what) {
    const std::string reason = os_error();
    ::unlink(tmp.c_str());
    throw Error(cat(where(path), what, " ", tmp, ": ", reason));
  };
  {
    File out(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!out.is_open()) fail("cannot create");
    bool ok = write_all(out.fd(), length, 8) && write_all(out.fd(), text.data(), text.size());
    for (size_t i = 0; ok && i < dense.size(); ++i)
      if (dense[i].numel() > 0)
        ok = write_all(out.fd(), dense[i].raw_data(),
                       static_cast<size_t>(dense[i].numel()) * dtype_size(dense[i].dtype()));
    if (!ok) fail("cannot write");
    if (::fsync(out.fd()) != 0) fail("cannot fsync");
    if (out.close() != 0) fail("cannot close");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename over it");
  sync_directory_of(path);
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& entry) { return entry.first == name; });
}

Tensor SafetensorsFile::at(const std::string& name) const {
  for (const auto& [key, tensor] : tensors)
    if (key == name) return tensor;
  std::string names;
  for (const auto& entry : tensors) names += (names.empty() ? "" : ", ") + entry.first;
  throw Error(cat(where(path), "no tensor named '", name, "' (it has: ",
                  names.empty() ? "none" : names, ")"));
}

SafetensorsFile load_safetensors(const std::string& path) {
  const std::string at = where(path);
  // O_NONBLOCK: a FIFO in the file's place is refused below, not waited on (reads of a regular
  // file ignore the flag).
  File in(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  check(in.is_open(), at, "cannot open: ", os_error());
  struct stat info {};
  check(::fstat(in.fd(), &info) == 0, at, "cannot stat: ", os_error());
  check(S_ISREG(info.st_mode), at, "not a regular file");
  const auto file_size = static_cast<uint64_t>(info.st_size);

  // Header length, header.
  check(file_size >= 8, at, "the file is ", file_size,
        " bytes, shorter than the 8-byte header length");
  unsigned char length_bytes[8];
  check(read_at(in.fd(), length_bytes, 8, 0) == 8, at, "cannot read the header length: ",
        os_error());
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(length_bytes[i]) << (8 * i);
  check(header_size <= file_size - 8, at, "header length ", header_size,
        " runs past the end of the file (", file_size, " bytes)");
  std::string text(header_size, '\0');
  check(read_at(in.fd(), text.data(), header_size, 8) == static_cast<int64_t>(header_size), at,
        "cannot read the header: ", os_error());
  const uint64_t data_start = 8 + header_size, data_size = file_size - data_start;

  // A name given twice would keep only its last entry, and then read as a gap in the data: the
  // parser refuses it by name instead (at the header's own level; metadata keys likewise).
  nlohmann::json header;
  try {
    header = parse_json_refusing_repeated_keys<nlohmann::json>(text, at + "the header's ");
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(at, "invalid JSON header: ", e.what()));
  }
  check(header.is_object(), at, "the header is not a JSON object");

  SafetensorsFile file;
  file.path = path;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      check(value.is_object(), at, "__metadata__ is not an object");
      for (const auto& [key, item] : value.items()) {
        check(item.is_string(), at, "__metadata__ value of '", key, "' is not a string");
        file.metadata[key] = item.get<std::string>();
      }
      continue;
    }
    const std::string tensor = cat("tensor '", name, "': ");
    check(value.is_object(), at, tensor, "entry is not an object");
    check(value.contains("dtype") && value["dtype"].is_string(), at, tensor,
          "missing or non-string dtype");
    const std::string tag = value["dtype"].get<std::string>();
    Entry entry{name, DType::Float32, {}, 0, 0};
    check(parse_dtype_tag(tag, &entry.dtype), at, tensor, "unsupported dtype '", tag,
          "' (expected F32, F64 or I64)");
    check(value.contains("shape") && value["shape"].is_array(), at, tensor,
          "missing or non-array shape");
    // Needed bytes, kept below 2^62 so that nothing overflows (no real file comes close).
    constexpr uint64_t kLimit = uint64_t{1} << 62;
    uint64_t bytes = dtype_size(entry.dtype);
    for (const auto& dim : value["shape"]) {
      check(dim.is_number_unsigned(), at, tensor, "shape ", value["shape"].dump(),
            " is not a list of non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      check(d <= kLimit && (d == 0 || bytes <= kLimit / d), at, tensor, "shape ",
            value["shape"].dump(), " is too large");
      bytes *= d;
      entry.shape.push_back(static_cast<int64_t>(d));
    }
    const auto& offsets = value.contains("data_offsets") ? value["data_offsets"] : nlohmann::json();
    check(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
              offsets[1].is_number_unsigned(),
          at, tensor, "data_offsets must be [begin, end] of non-negative integers, got ",
          offsets.dump());
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    check(entry.begin <= entry.end, at, tensor, "data_offsets ", offsets.dump(),
          " end before they begin");
    check(entry.end - entry.begin == bytes, at, tensor, "data_offsets ", offsets.dump(),
          " hold ", entry.end - entry.begin, " bytes, but shape ", shape_str(entry.shape), " of ",
          tag, " needs ", bytes);
    entries.push_back(std::move(entry));
  }

  // The tensors must tile the data exactly: in offset order, each begins where the last ended.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected_begin = 0;
  for (const Entry& entry : entries) {
    check(entry.begin == expected_begin, at, "tensor '", entry.name, "': data_offsets [",
          entry.begin, ", ", entry.end, "] ",
          entry.begin < expected_begin ? "overlap" : "leave a gap after",
          " the data before them (which ends at ", expected_begin, ")");
    expected_begin = entry.end;
  }
  check(expected_begin <= data_size, at, "truncated: header says ", expected_begin,
        " bytes of data, file has ", data_size);
  check(expected_begin == data_size, at, "the file has ", data_size,
        " bytes of data, but the header accounts for only ", expected_begin);

  for (const Entry& entry : entries) {
    Tensor t = Tensor::empty(entry.shape, entry.dtype);
    const uint64_t bytes = entry.end - entry.begin;
    if (bytes > 0)
      check(read_at(in.fd(), t.raw_data(), bytes, data_start + entry.begin) ==
                static_cast<int64_t>(bytes),
            at, "cannot read tensor '", entry.name, "': ", os_error());
    file.tensors.emplace_back(entry.name, std::move(t));
  }
  return file;
}

}  // namespace tg::nn
