// tinygrok: the one header a program includes to use the engine.
#pragma once

#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/factories.h"
#include "core/random.h"
#include "core/tensor.h"
