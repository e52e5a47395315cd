// Neuron clusters: 2-D Fourier transforms of the neurons' (a, b) tables, and the activations.
#include "grok/analysis/neuron_clusters.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "grok/analysis/fourier.h"
#include "grok/dataset.h"
#include "grok/trainer.h"
#include "nn/activation.h"
#include "nn/one_hot_mlp.h"
#include "nn/transformer.h"

namespace tg::grok::analysis {

NeuronClusters cluster_neurons(const Tensor& activations, double threshold) {
  check(activations.dim() == 3 && activations.size(0) == activations.size(1),
        "cluster_neurons: activations must be [p, p, N], got ", shape_str(activations.shape()));
  const int64_t p = activations.size(0), n = activations.size(2);
  const FourierBasis basis = fourier_basis(p);
  NoGradGuard no_grad;
  // coefficients[j, i, n] = Σ_a Σ_b F[i, a] F[j, b] X[a, b, n]: transform b (batched over a),
  // swap the two axes, transform a.
  const Tensor x = activations.to(Device::cpu()).to(DType::Float64);
  const Tensor over_b = matmul(basis.rows, x).permute({1, 0, 2}).contiguous();  // [j, a, n]
  const std::vector<double> c = matmul(basis.rows, over_b).contiguous().to_vector<double>();

  const int64_t frequencies = basis.max_frequency();
  std::vector<double> energy(static_cast<size_t>(n * (frequencies + 1)));  // [n, k]
  std::vector<double> variance(static_cast<size_t>(n), 0.0);
  for (int64_t j = 0; j < p; ++j)
    for (int64_t i = 0; i < p; ++i) {
      if (i == 0 && j == 0) continue;  // the mean
      const int64_t fi = basis.frequency[i], fj = basis.frequency[j];
      // The term belongs to frequency k when {fi, fj} ⊆ {0, k}; mixed ones to none.
      const int64_t k = fi == 0 ? fj : fj == 0 || fj == fi ? fi : -1;
      const double* row = c.data() + (j * p + i) * n;
      for (int64_t m = 0; m < n; ++m) {
        const double e = row[m] * row[m];
        variance[m] += e;
        if (k > 0) energy[m * (frequencies + 1) + k] += e;
      }
    }
  NeuronClusters out;
  out.threshold = threshold;
  out.neurons.resize(static_cast<size_t>(n));
  for (int64_t m = 0; m < n; ++m) {
    NeuronFrequency& neuron = out.neurons[m];
    // A dead neuron (zero variance up to rounding) explains nothing.
    if (variance[m] > 1e-24) {
      for (int64_t k = 1; k <= frequencies; ++k) {
        const double fraction = energy[m * (frequencies + 1) + k] / variance[m];
        if (fraction > neuron.best_fraction) {
          neuron.best_fraction = fraction;
          neuron.best_frequency = k;
        }
      }
    }
    if (neuron.best_frequency > 0 && neuron.best_fraction >= threshold) {
      neuron.cluster = neuron.best_frequency;
      ++out.sizes[neuron.cluster];
    } else {
      ++out.unclustered;
    }
  }
  return out;
}

namespace {

// The one-hot MLP's pre-activations W_in[a] + W_in[p + b] -> [p, p, width].
Tensor one_hot_mlp_neurons(const nn::OneHotMLP& model) {
  const int64_t p = model.p();
  const Tensor W_in = model.W_in().to(Device::cpu()).to(DType::Float64);
  return W_in.slice(0, 0, p).unsqueeze(1) + W_in.slice(0, p, 2 * p).unsqueeze(0);
}

// The last block's MLP activations at the last position, recomputed step by step from the
// model's modules and weights, and the logits they lead to (for the check against forward()).
Tensor transformer_neurons(nn::Transformer& model, const Tensor& tokens) {
  const nn::TransformerConfig& config = model.config();
  check(config.n_layers >= 1, "neuron_activations: the transformer has no blocks");
  const std::map<std::string, Tensor> w = model.state_dict();
  auto ln = [&](const std::string& name, const Tensor& v) {
    return layer_norm(v, w.at(name + ".w"), w.at(name + ".b"));
  };
  const int64_t batch = tokens.size(0), len = tokens.size(1);
  Tensor x = model.embed().forward(tokens) + model.pos_embed().forward(tokens);  // [B, T, d]
  for (int64_t i = 0; i + 1 < config.n_layers; ++i) x = model.block(i).forward(x);
  const nn::TransformerBlock& block = model.block(config.n_layers - 1);
  const std::string prefix = "blocks." + std::to_string(config.n_layers - 1) + ".";
  const Tensor last = x.slice(1, len - 1, len);  // [B, 1, d]
  Tensor h, mlp_in;
  switch (config.ln) {
    case nn::LayerNormMode::None:
      h = last + block.attn().forward(x, 1);
      mlp_in = h;
      break;
    case nn::LayerNormMode::Pre:
      h = last + block.attn().forward(ln(prefix + "ln1", x), 1);
      mlp_in = ln(prefix + "ln2", h);
      break;
    case nn::LayerNormMode::Post:
      h = ln(prefix + "ln1", last + block.attn().forward(x, 1));
      mlp_in = h;
      break;
  }
  const Tensor hidden = nn::activate(
      linear(mlp_in, w.at(prefix + "mlp.W_in"), w.at(prefix + "mlp.b_in")), config.act);
  // The check: the rest of the model from these neurons must give forward()'s logits.
  const Tensor mlp_out = linear(hidden, w.at(prefix + "mlp.W_out"), w.at(prefix + "mlp.b_out"));
  Tensor resid =
      config.ln == nn::LayerNormMode::Post ? ln(prefix + "ln2", h + mlp_out) : h + mlp_out;
  if (config.ln != nn::LayerNormMode::None) resid = ln("ln_final", resid);
  const Tensor logits = model.unembed().forward(resid.reshape({batch, config.d_model}));
  const Tensor expected = model.forward(tokens);
  const double scale = std::max(1.0, max(expected.to(DType::Float64).pow(2)).item());
  const double error = max((logits - expected).to(DType::Float64).pow(2)).item();
  check(error <= 1e-6 * scale,
        "neuron_activations: the logits recomputed from the MLP neurons "
        "differ from the model's (max squared error ",
        error,
        "): the model is not the "
        "transformer this analysis knows");
  return hidden.reshape({batch, hidden.size(-1)});
}

}  // namespace

NeuronActivations neuron_activations(nn::Model& model, const TrainConfig& config, int64_t p) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  NeuronActivations out;
  if (auto* mlp = dynamic_cast<nn::OneHotMLP*>(&model)) {
    check(mlp->p() == p, "neuron_activations: the model's p is ", mlp->p(), ", not ", p);
    out.values = one_hot_mlp_neurons(*mlp);
    out.description = "one-hot MLP: hidden pre-activation W_in[a] + W_in[p+b]";
  } else if (auto* transformer = dynamic_cast<nn::Transformer*>(&model)) {
    const Dataset table = make_dataset(Operation::Add, p);  // every (a, b)
    const Device device = model.parameters().front().device();
    const Tensor tokens = make_tokens(table, table.pairs, token_format(config)).to(device);
    const Tensor hidden = transformer_neurons(*transformer, tokens);  // [p², N]
    out.values = hidden.to(Device::cpu()).to(DType::Float64).reshape({p, p, hidden.size(1)});
    out.description = cat("transformer: MLP neurons of block ", config.layers - 1,
                          " after the activation (", config.act, "), at the last position");
  } else {
    throw Error("neuron_activations: unknown model type");
  }
  model.train(was_training);
  return out;
}

}  // namespace tg::grok::analysis
