// Which runs' steps can be recorded as a CUDA graph (see step_capture.h).
#include "grok/step_capture.h"

#include "core/error.h"

namespace tg::grok {

CudaGraphMode parse_cuda_graph(const std::string& text) {
  if (text == "auto") return CudaGraphMode::Auto;
  if (text == "on") return CudaGraphMode::On;
  if (text == "off") return CudaGraphMode::Off;
  throw Error(cat("--cuda-graph: expected auto, on or off, got '", text, "'"));
}

std::string why_step_cannot_be_captured(const TrainConfig& c, int64_t batches_per_epoch) {
  if (batches_per_epoch > kMaxRecordedBatchesPerEpoch)
    return cat("--batch: ", batches_per_epoch, " batches per epoch, more than the ",
               kMaxRecordedBatchesPerEpoch, " recorded (one graph each)");
  if (c.optimizer == "sgd") return "--optimizer sgd: its learning rate is set from the host";
  if (c.dropout > 0) return "--dropout: the masks' random offsets advance on the host";
  if (c.clip > 0) return "--clip: clipping reads the gradient norm on the host";
  if (c.grokfast != "none") return "--grokfast: the filter counts its steps on the host";
  if (c.orthogonal_grad) return "--orthogonal-grad: the projection reads dot products on the host";
  if (c.weight_norm_constraint)
    return "--weight-norm-constraint: the rescaling reads the weight norm on the host";
  if (c.wd_target != "zero") return "--wd-target init: its decay takes the learning rate from the host";
  return "";
}

}  // namespace tg::grok
