// The real Fourier basis of functions on Z_p, and the Fourier spectrum of an embedding: how much
// of its norm sits at each frequency (Nanda et al. 2023; REFERENCE §2). A network that has
// grokked modular addition embeds a and b through a handful of "key" frequencies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg::grok::analysis {

// p orthonormal rows over a = 0..p-1: the constant 1/sqrt(p), then cos(2πka/p) and sin(2πka/p)
// for k = 1..⌊(p-1)/2⌋, each scaled to unit norm, and for even p a last cos-only row at
// k = p/2 (its sine vanishes at every integer a). Frequencies run 0 (the constant) to ⌊p/2⌋.
struct FourierBasis {
  int64_t p = 0;
  Tensor rows;                     // float64 [p, p]: rows[i, a]
  std::vector<int64_t> frequency;  // the frequency of each row
  std::vector<std::string> names;  // "const", "cos 1", "sin 1", ...

  int64_t max_frequency() const { return p / 2; }
};

FourierBasis fourier_basis(int64_t p);

// The energy (squared norm) of `table` [p, d] (rows indexed by a) at each frequency k = 0..⌊p/2⌋:
// the squared norm of its projection on that frequency's cos and sin rows together. The energies
// sum to ‖table‖² (the basis is orthonormal).
std::vector<double> frequency_energy(const FourierBasis& basis, const Tensor& table);

// The embedding's Fourier norms, norm[k] = sqrt(energy at k), k = 0..⌊p/2⌋ (k = 0: the constant).
// For the transformer the table is embed.W_E rows 0..p-1 (the numbers, not the '=' or op tokens);
// for the one-hot MLP, whose W_in [2p, width] embeds a in rows 0..p-1 and b in rows p..2p-1,
// norm_a and norm_b are the two halves' and norm combines them: norm² = norm_a² + norm_b².
struct EmbeddingSpectrum {
  std::vector<double> norm;
  std::vector<double> norm_a, norm_b;  // the one-hot MLP only; empty for the transformer
  std::string source;                  // which weights, in words
};

// `weights` are a model's named parameters (any device; copied to the host). Throws naming the
// parameter when neither embed.W_E nor W_in is there or has fewer than p (2p) rows.
EmbeddingSpectrum embedding_spectrum(const std::vector<std::pair<std::string, Tensor>>& weights,
                                     int64_t p);

// Key frequencies: those whose embedding energy (norm²) exceeds kKeyFrequencyFactor times the
// median energy of the non-constant frequencies, ascending. A random (memorising) embedding
// spreads its energy evenly, every frequency within a few tens of percent of the median, and has
// none; a grokked one concentrates it in a few frequencies, each orders of magnitude above the
// background that the median measures. (The median rather than the mean: a handful of strong
// frequencies would raise the mean so far that the weaker of them fall below it, the more so the
// fewer frequencies there are, as for small p.) Needs fewer than half the frequencies to be key.
constexpr double kKeyFrequencyFactor = 10.0;
// Each frequency's energy over the median energy of the non-constant frequencies, index k
// (entry 0, the constant, is 0); all 0 when the median is 0.
std::vector<double> energy_over_median(const std::vector<double>& norm);
std::vector<int64_t> key_frequencies(const std::vector<double>& norm,
                                     double factor = kKeyFrequencyFactor);

// The share of the non-constant energy that `keys` carry, in [0, 1] (0 when there is none).
double key_energy_fraction(const std::vector<double>& norm, const std::vector<int64_t>& keys);

// How many frequencies the embedding uses, as a number: the participation ratio
// (Σ_k e_k)² / Σ_k e_k² of the non-constant energies e_k — n for n equal frequencies and nothing
// else, ⌊p/2⌋ for a flat spectrum. A sparsity measure that needs no key set. 0 for no energy.
double effective_frequency_count(const std::vector<double>& norm);

}  // namespace tg::grok::analysis
