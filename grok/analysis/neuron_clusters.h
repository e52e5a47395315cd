// Neurons clustered by frequency (Nanda et al. 2023): a hidden neuron of a grokked network
// responds to (a, b) through one frequency k — its activation over the (a, b) table is mostly
// made of the 2-D Fourier terms of k. Each neuron goes to the frequency whose terms explain the
// largest fraction of its variance, when that fraction reaches the threshold (0.85, Nanda's);
// otherwise it is unclustered.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "grok/config.h"
#include "nn/model.h"

namespace tg::grok::analysis {

constexpr double kNeuronClusterThreshold = 0.85;

struct NeuronFrequency {
  int64_t best_frequency =
      0;                     // the frequency explaining the most variance (0: none, a dead neuron)
  double best_fraction = 0;  // the fraction of the variance it explains
  int64_t cluster = 0;       // best_frequency when best_fraction >= threshold, else 0
};

struct NeuronClusters {
  std::vector<NeuronFrequency> neurons;
  std::map<int64_t, int64_t> sizes;  // frequency -> neurons in its cluster
  int64_t unclustered = 0;
  double threshold = kNeuronClusterThreshold;
};

// activations [p, p, N]: neuron n's value at (a, b). The terms of frequency k are the products
// f_i(a) g_j(b) of 1-D basis rows (grok/analysis/fourier.h) whose frequencies are both in {0, k},
// not both 0: cos/sin(w_k a), cos/sin(w_k b) and the four products of those, which span
// cos/sin(w_k(a ± b)). The variance is the energy of every term but the constant.
NeuronClusters cluster_neurons(const Tensor& activations,
                               double threshold = kNeuronClusterThreshold);

struct NeuronActivations {
  Tensor values;            // float64 [p, p, N]
  std::string description;  // which activation, in words
};

// The model's hidden neurons over every (a, b):
//  - transformer: the last block's MLP neurons after the activation, at the last position (the
//    activations Nanda et al. cluster). The logits recomputed from them are checked against the
//    model's own, so a model this does not understand is an error rather than a wrong answer;
//  - one-hot MLP: the pre-activation W_in[a] + W_in[p + b]. (After x² each neuron's frequency-k
//    input puts a fifth of its variance at 2k by construction — cos² = (1 + cos 2x)/2 — so the
//    post-activation would never reach 0.85 at one frequency.)
// The model's weights may be on any device; the work is on the host.
NeuronActivations neuron_activations(nn::Model& model, const TrainConfig& config, int64_t p);

}  // namespace tg::grok::analysis
