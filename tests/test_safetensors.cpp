// safetensors tests: round trips of every dtype with metadata and non-contiguous tensors, the
// byte layout read back by hand, each kind of corrupt file, and the atomic write.
#include <catch2/catch.hpp>

#include "test_support.h"
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nn/safetensors.h"
#include "tinygrok.h"

using namespace tg;
using namespace tg::nn;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

using tg::testing::TempDir;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string length_prefix(uint64_t n) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
  return bytes;
}

// A file made by hand: the header text as given, then `data_bytes` zero bytes.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  write_bytes(path, length_prefix(header.size()) + header + std::string(data_bytes, '\0'));
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, metadata and non-contiguous tensors",
          "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const Tensor f32 = from_vector<float>({1.5f, -2.25f, 3e-8f, 4e30f, 0.f, -0.f}, {2, 3});
  const Tensor f64 = from_vector<double>({3.141592653589793, -1e-300}, {2});
  const Tensor i64 = from_vector<int64_t>({-1, 0, (int64_t{1} << 62) + 7}, {3, 1});
  const Tensor transposed = f32.t();  // [3, 2], strides [1, 3]
  const Tensor stepped = from_vector<double>({0, 1, 2, 3, 4, 5, 6}).slice(0, 1, 7, 2);  // 1 3 5
  const Tensor broadcast = from_vector<int64_t>({8, 9}).expand({3, 2});  // strides [0, 1]
  const Tensor zero_d = scalar(42.0, DType::Float64);
  const Tensor empty = zeros({0, 3});
  REQUIRE_FALSE(transposed.is_contiguous());
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"embed.W_E", f32},         {"pos", f64},         {"ids", i64},
      {"transposed", transposed}, {"stepped", stepped}, {"broadcast", broadcast},
      {"zero_d", zero_d},         {"empty", empty}};
  const std::map<std::string, std::string> metadata = {
      {"step", "1200"}, {"config", R"({"p": 113, "op": "add"})"}, {"empty", ""}};
  save_safetensors(path, tensors, metadata);

  const SafetensorsFile file = load_safetensors(path);
  CHECK(file.path == path);
  CHECK(file.metadata == metadata);
  REQUIRE(file.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, expected] = tensors[i];
    const auto& [loaded_name, loaded] = file.tensors[i];
    INFO(name);
    CHECK(loaded_name == name);  // the order given
    CHECK(loaded.shape() == expected.shape());
    CHECK(loaded.dtype() == expected.dtype());
    CHECK(loaded.is_contiguous());
    CHECK(loaded.device().is_cpu());
    CHECK_FALSE(loaded.requires_grad());
    if (expected.dtype() == DType::Int64)
      CHECK(loaded.to_vector<int64_t>() == expected.to_vector<int64_t>());
    else  // doubles hold float32 values exactly, so this is a bitwise comparison of values
      CHECK(loaded.to_vector<double>() == expected.to_vector<double>());
  }
  CHECK(file.at("transposed").to_vector<float>() ==
        std::vector<float>{1.5f, 4e30f, -2.25f, 0.f, 3e-8f, -0.f});
  CHECK(file.at("stepped").to_vector<double>() == std::vector<double>{1, 3, 5});
  CHECK(file.at("broadcast").to_vector<int64_t>() == std::vector<int64_t>{8, 9, 8, 9, 8, 9});
  CHECK(file.contains("pos"));
  CHECK_FALSE(file.contains("W_U"));
  REQUIRE_TG_ERROR(file.at("W_U"),
                   Equals("checkpoint " + path + ": no tensor named 'W_U' (it has: embed.W_E, pos, "
                          "ids, transposed, stepped, broadcast, zero_d, empty)"));

  // No tensors and no metadata is a valid file too.
  save_safetensors(dir.file("none.safetensors"), {});
  const SafetensorsFile none = load_safetensors(dir.file("none.safetensors"));
  CHECK(none.tensors.empty());
  CHECK(none.metadata.empty());
}

TEST_CASE("safetensors: the byte layout matches the format", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("layout.safetensors");
  const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_vector<int64_t>({7, -8});
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"step", "3"}});

  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  CHECK((8 + n) % 8 == 0);  // the data starts 8-byte aligned
  REQUIRE(bytes.size() == 8 + n + 24 + 16);
  const std::string header_text = bytes.substr(8, n);
  CHECK(header_text.front() == '{');
  CHECK(header_text.find_first_not_of(' ', header_text.rfind('}') + 1) == std::string::npos);

  const nlohmann::json header = nlohmann::json::parse(header_text);
  CHECK(header["__metadata__"] == nlohmann::json({{"step", "3"}}));
  CHECK(header["a"]["dtype"] == "F32");
  CHECK(header["a"]["shape"] == nlohmann::json({2, 3}));
  CHECK(header["a"]["data_offsets"] == nlohmann::json({0, 24}));
  CHECK(header["b"]["dtype"] == "I64");
  CHECK(header["b"]["shape"] == nlohmann::json({2}));
  CHECK(header["b"]["data_offsets"] == nlohmann::json({24, 40}));
  CHECK(header.size() == 3);

  // Raw little-endian values, row-major, back to back.
  const float a_values[6] = {1, 2, 3, 4, 5, 6};
  const int64_t b_values[2] = {7, -8};
  CHECK(std::memcmp(bytes.data() + 8 + n, a_values, 24) == 0);
  CHECK(std::memcmp(bytes.data() + 8 + n + 24, b_values, 16) == 0);
  CHECK(static_cast<unsigned char>(bytes[8 + n]) == 0x00);  // 1.0f = 0x3F800000, low byte first
  CHECK(static_cast<unsigned char>(bytes[8 + n + 3]) == 0x3F);

  // A file written by hand to the format (unpadded header, F64) loads.
  const double c_values[2] = {0.5, -4};
  const std::string hand = R"({"c":{"dtype":"F64","shape":[1,2],"data_offsets":[0,16]}})";
  const std::string data(reinterpret_cast<const char*>(c_values), sizeof c_values);
  write_bytes(dir.file("hand.safetensors"), length_prefix(hand.size()) + hand + data);
  const SafetensorsFile file = load_safetensors(dir.file("hand.safetensors"));
  CHECK(file.at("c").shape() == Shape{1, 2});
  CHECK(file.at("c").to_vector<double>() == std::vector<double>{0.5, -4});
}

TEST_CASE("safetensors: every corruption is an error naming the file", "[safetensors]") {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"w", ones({4, 8})}, {"b", zeros({8}, DType::Int64)}},
                   {{"step", "10"}});
  const std::string bytes = read_bytes(good);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  const uint64_t data = 128 + 64;
  REQUIRE(bytes.size() == 8 + n + data);
  const std::string bad = dir.file("bad.safetensors");
  const std::string prefix = "checkpoint " + bad + ": ";

  SECTION("truncated at several points") {
    for (size_t cut : {size_t{0}, size_t{1}, size_t{7}}) {
      write_bytes(bad, bytes.substr(0, cut));
      REQUIRE_TG_ERROR(load_safetensors(bad),
                       Equals(prefix + "the file is " + std::to_string(cut) +
                              " bytes, shorter than the 8-byte header length"));
    }
    for (size_t cut : {size_t{8}, size_t{9}, size_t{8 + n / 2}, size_t{8 + n - 1}}) {
      write_bytes(bad, bytes.substr(0, cut));
      REQUIRE_TG_ERROR(load_safetensors(bad), StartsWith(prefix + "header length " +
                                                         std::to_string(n) + " runs past the end"));
    }
    for (size_t kept : {size_t{0}, size_t{1}, size_t{100}, size_t{data - 1}}) {
      write_bytes(bad, bytes.substr(0, 8 + n + kept));
      REQUIRE_TG_ERROR(load_safetensors(bad),
                       Equals(prefix + "truncated: header says 192 bytes of data, file has " +
                              std::to_string(kept)));
    }
  }
  SECTION("garbled header length") {
    write_bytes(bad, length_prefix(uint64_t{1} << 63) + bytes.substr(8));
    REQUIRE_TG_ERROR(load_safetensors(bad),
                     StartsWith(prefix + "header length 9223372036854775808"));
    write_bytes(bad, length_prefix(n / 2) + bytes.substr(8));  // the JSON is cut short
    REQUIRE_TG_ERROR(load_safetensors(bad), StartsWith(prefix + "invalid JSON header"));
    write_bytes(bad, length_prefix(0) + bytes.substr(8));
    REQUIRE_TG_ERROR(load_safetensors(bad), StartsWith(prefix + "invalid JSON header"));
  }
  SECTION("bad JSON") {
    write_raw(bad, R"({"w": {"dtype": "F32", "shape": [1], )", 4);
    REQUIRE_TG_ERROR(load_safetensors(bad), StartsWith(prefix + "invalid JSON header"));
    write_raw(bad, "[1, 2]", 0);
    REQUIRE_TG_ERROR(load_safetensors(bad), Equals(prefix + "the header is not a JSON object"));
    write_raw(bad, R"({"w": 3})", 0);
    REQUIRE_TG_ERROR(load_safetensors(bad), Equals(prefix + "tensor 'w': entry is not an object"));
    write_raw(bad, R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains("tensor 'w': missing or non-string dtype"));
    write_raw(bad, R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains(bad) && Contains("non-negative integers"));
    write_raw(bad, R"({"__metadata__": {"step": 3}})", 0);
    REQUIRE_TG_ERROR(load_safetensors(bad),
                     Equals(prefix + "__metadata__ value of 'step' is not a string"));
    // A name given twice (which JSON parsers resolve by keeping one entry) is named as such.
    write_raw(bad,
              R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
              R"( "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
              8);
    REQUIRE_TG_ERROR(load_safetensors(bad),
                     Contains(bad) && Contains("the header's key \"w\" is given twice"));
    // A size past int64 beside an empty axis: no elements, but not a shape tinygrok can hold.
    write_raw(bad, R"({"w": {"dtype": "F32", "shape": [0, 9223372036854775808], )"
                   R"("data_offsets": [0, 0]}})",
              0);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains(bad) && Contains("is too large"));
  }
  SECTION("bad dtype") {
    write_raw(bad, R"({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})", 4);
    REQUIRE_TG_ERROR(load_safetensors(bad), Equals(prefix + "tensor 'w': unsupported dtype 'BF16' "
                                                            "(expected F32, F64 or I64)"));
  }
  SECTION("bad offsets") {
    // Size that does not match shape × dtype.
    write_raw(bad, R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 12]}})", 12);
    REQUIRE_TG_ERROR(load_safetensors(bad),
                     Equals(prefix + "tensor 'w': data_offsets [0,12] hold 12 bytes, but shape "
                                     "[2, 3] of F32 needs 24"));
    // Out of range: beyond the data the file holds.
    write_raw(bad, R"({"w": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})", 8);
    REQUIRE_TG_ERROR(load_safetensors(bad),
                     Equals(prefix + "truncated: header says 16 bytes of data, file has 8"));
    // Overlap, gap, backwards, malformed.
    write_raw(bad,
              R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
              R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
              12);
    REQUIRE_TG_ERROR(load_safetensors(bad),
                     Contains(bad) && Contains("tensor 'b'") && Contains("overlap"));
    write_raw(bad, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains(bad) && Contains("leave a gap"));
    write_raw(bad, R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains(bad) && Contains("end before they begin"));
    write_raw(bad, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains(bad) && Contains("[begin, end]"));
    write_raw(bad, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains(bad) && Contains("[begin, end]"));
    // Huge shapes do not overflow the size computation.
    write_raw(bad,
              R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296], )"
              R"("data_offsets": [0, 0]}})",
              0);
    REQUIRE_TG_ERROR(load_safetensors(bad), Contains(bad) && Contains("too large"));
    // Trailing bytes the header does not account for.
    write_bytes(bad, bytes + "xyz");
    REQUIRE_TG_ERROR(load_safetensors(bad),
                     Equals(prefix + "the file has 195 bytes of data, but the header "
                                     "accounts for only 192"));
  }
  SECTION("missing file or a directory") {
    const std::string missing = dir.file("missing.safetensors");
    REQUIRE_TG_ERROR(load_safetensors(missing),
                     Equals("checkpoint " + missing + ": cannot open: No such file or directory"));
    REQUIRE_TG_ERROR(load_safetensors(dir.path.string()), Contains(dir.path.string()));
  }
  // The intact file still loads.
  CHECK(load_safetensors(good).at("w").shape() == Shape{4, 8});
}

TEST_CASE("safetensors: the write is atomic and checks its inputs", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"w", full({3}, 1.0)}}, {{"step", "1"}});
  CHECK(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // A stale .tmp from a crashed save is overwritten, and a new save replaces the file whole.
  write_bytes(path + ".tmp", "half-written garbage");
  save_safetensors(path, {{"w", full({5}, 2.0)}}, {{"step", "2"}});
  CHECK_FALSE(fs::exists(path + ".tmp"));
  const SafetensorsFile file = load_safetensors(path);
  CHECK(file.metadata.at("step") == "2");
  CHECK(file.at("w").to_vector<float>() == std::vector<float>(5, 2.0f));
  int entries = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) entries += entry.exists();
  CHECK(entries == 1);

  // A failed save leaves the previous file untouched and no .tmp.
  const std::string nowhere = dir.file("no/such/dir/model.safetensors");
  REQUIRE_TG_ERROR(save_safetensors(nowhere, {{"w", ones({2})}}),
                   StartsWith("checkpoint " + nowhere + ": cannot create"));
  REQUIRE_TG_ERROR(save_safetensors(path, {{"w", ones({2})}, {"w", ones({2})}}),
                   Contains(path) && Contains("'w' appears twice"));
  REQUIRE_TG_ERROR(save_safetensors(path, {{"__metadata__", ones({2})}}),
                   Contains("invalid tensor name '__metadata__'"));
  REQUIRE_TG_ERROR(save_safetensors(path, {{"", ones({2})}}), Contains("invalid tensor name ''"));
  REQUIRE_TG_ERROR(save_safetensors(path, {{"g", Tensor()}}), Contains("tensor 'g' is undefined"));
  CHECK(load_safetensors(path).metadata.at("step") == "2");
  CHECK_FALSE(fs::exists(path + ".tmp"));
}
