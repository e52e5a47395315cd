// tinygrok: the one header a program includes to use the engine, its modules and optimisers.
#pragma once

#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/factories.h"
#include "core/random.h"
#include "core/tensor.h"
#include "nn/one_hot_mlp.h"
#include "nn/safetensors.h"
#include "nn/transformer.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
