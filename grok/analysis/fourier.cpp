// The Fourier basis over Z_p and embedding spectra, in float64.
#include "grok/analysis/fourier.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/error.h"
#include "core/factories.h"

namespace tg::grok::analysis {

FourierBasis fourier_basis(int64_t p) {
  check(p >= 2, "fourier_basis: p must be at least 2, got ", p);
  FourierBasis basis;
  basis.p = p;
  std::vector<double> values;
  values.reserve(static_cast<size_t>(p * p));
  auto add_row = [&](int64_t k, const std::string& name, auto&& f) {
    std::vector<double> row(static_cast<size_t>(p));
    double squared = 0;
    for (int64_t a = 0; a < p; ++a) {
      row[a] = f(2 * std::numbers::pi * static_cast<double>(k * a) / static_cast<double>(p));
      squared += row[a] * row[a];
    }
    for (double& v : row) values.push_back(v / std::sqrt(squared));  // unit norm, measured
    basis.frequency.push_back(k);
    basis.names.push_back(name);
  };
  add_row(0, "const", [](double) { return 1.0; });
  for (int64_t k = 1; 2 * k < p; ++k) {
    add_row(k, "cos " + std::to_string(k), [](double x) { return std::cos(x); });
    add_row(k, "sin " + std::to_string(k), [](double x) { return std::sin(x); });
  }
  if (p % 2 == 0)
    add_row(p / 2, "cos " + std::to_string(p / 2), [](double x) { return std::cos(x); });
  basis.rows = from_vector(values, {p, p});
  return basis;
}

std::vector<double> frequency_energy(const FourierBasis& basis, const Tensor& table) {
  check(table.dim() == 2 && table.size(0) == basis.p, "frequency_energy: the table must be [",
        basis.p, ", d], got ", shape_str(table.shape()));
  NoGradGuard no_grad;
  const Tensor coefficients =
      matmul(basis.rows, table.to(Device::cpu()).to(DType::Float64)).contiguous();  // [p, d]
  const std::vector<double> c = coefficients.to_vector<double>();
  const int64_t d = table.size(1);
  std::vector<double> energy(static_cast<size_t>(basis.max_frequency() + 1), 0.0);
  for (int64_t i = 0; i < basis.p; ++i)
    for (int64_t j = 0; j < d; ++j) energy[basis.frequency[i]] += c[i * d + j] * c[i * d + j];
  return energy;
}

namespace {

const Tensor* find_weight(const std::vector<std::pair<std::string, Tensor>>& weights,
                          const std::string& name) {
  for (const auto& [n, t] : weights)
    if (n == name) return &t;
  return nullptr;
}

std::vector<double> square_root(std::vector<double> energy) {
  for (double& e : energy) e = std::sqrt(e);
  return energy;
}

}  // namespace

EmbeddingSpectrum embedding_spectrum(const std::vector<std::pair<std::string, Tensor>>& weights,
                                     int64_t p) {
  const FourierBasis basis = fourier_basis(p);
  EmbeddingSpectrum spectrum;
  if (const Tensor* W_E = find_weight(weights, "embed.W_E")) {
    check(W_E->dim() == 2 && W_E->size(0) >= p, "embedding_spectrum: embed.W_E must have at least ",
          p, " rows, got ", shape_str(W_E->shape()));
    spectrum.norm = square_root(frequency_energy(basis, W_E->slice(0, 0, p)));
    spectrum.source = "embed.W_E rows 0..p-1";
    return spectrum;
  }
  const Tensor* W_in = find_weight(weights, "W_in");
  check(W_in != nullptr, "embedding_spectrum: the model has neither embed.W_E nor W_in");
  check(W_in->dim() == 2 && W_in->size(0) == 2 * p, "embedding_spectrum: W_in must have ", 2 * p,
        " rows, got ", shape_str(W_in->shape()));
  const std::vector<double> a = frequency_energy(basis, W_in->slice(0, 0, p));
  const std::vector<double> b = frequency_energy(basis, W_in->slice(0, p, 2 * p));
  std::vector<double> both(a.size());
  for (size_t k = 0; k < a.size(); ++k) both[k] = a[k] + b[k];
  spectrum.norm = square_root(both);
  spectrum.norm_a = square_root(a);
  spectrum.norm_b = square_root(b);
  spectrum.source = "W_in rows 0..p-1 (a) and p..2p-1 (b), combined as sqrt(norm_a^2 + norm_b^2)";
  return spectrum;
}

namespace {
double median_energy(const std::vector<double>& norm) {
  std::vector<double> energy;  // of the non-constant frequencies
  for (size_t k = 1; k < norm.size(); ++k) energy.push_back(norm[k] * norm[k]);
  if (energy.empty()) return 0;
  std::sort(energy.begin(), energy.end());
  const size_t n = energy.size();
  return n % 2 ? energy[n / 2] : 0.5 * (energy[n / 2 - 1] + energy[n / 2]);
}
}  // namespace

std::vector<double> energy_over_median(const std::vector<double>& norm) {
  const double median = median_energy(norm);
  std::vector<double> ratio(norm.size(), 0.0);
  if (median > 0)
    for (size_t k = 1; k < norm.size(); ++k) ratio[k] = norm[k] * norm[k] / median;
  return ratio;
}

std::vector<int64_t> key_frequencies(const std::vector<double>& norm, double factor) {
  std::vector<int64_t> keys;
  double total = 0;
  for (size_t k = 1; k < norm.size(); ++k) total += norm[k] * norm[k];
  // The floor keeps rounding noise out when the median is ~0 (an exactly sparse embedding).
  const double threshold = std::max(factor * median_energy(norm), 1e-9 * total);
  for (size_t k = 1; k < norm.size(); ++k)
    if (norm[k] * norm[k] > threshold) keys.push_back(static_cast<int64_t>(k));
  return keys;
}

double key_energy_fraction(const std::vector<double>& norm, const std::vector<int64_t>& keys) {
  double total = 0, key = 0;
  for (size_t k = 1; k < norm.size(); ++k) total += norm[k] * norm[k];
  for (int64_t k : keys)
    if (k >= 1 && k < static_cast<int64_t>(norm.size())) key += norm[k] * norm[k];
  return total > 0 ? key / total : 0.0;
}

double effective_frequency_count(const std::vector<double>& norm) {
  double sum = 0, sum_squares = 0;
  for (size_t k = 1; k < norm.size(); ++k) {
    const double e = norm[k] * norm[k];
    sum += e;
    sum_squares += e * e;
  }
  return sum_squares > 0 ? sum * sum / sum_squares : 0.0;
}

}  // namespace tg::grok::analysis
