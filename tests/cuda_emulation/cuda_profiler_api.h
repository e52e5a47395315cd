// Stands in for the CUDA header of this name under host emulation (emulated_cuda.h).
#pragma once
#include "emulated_cuda.h"
