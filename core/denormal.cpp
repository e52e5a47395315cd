// set_flush_denormal: the MXCSR's FTZ and DAZ bits, per thread.
#include "core/denormal.h"

#include <omp.h>

#if defined(__SSE2__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

namespace tg {

bool set_flush_denormal(bool on) {
#if defined(__SSE2__)
  // The mode is per thread: set it on this one and on each thread of the OpenMP pool (new
  // threads inherit it from their creator).
  auto apply = [on] {
    _MM_SET_FLUSH_ZERO_MODE(on ? _MM_FLUSH_ZERO_ON : _MM_FLUSH_ZERO_OFF);
    _MM_SET_DENORMALS_ZERO_MODE(on ? _MM_DENORMALS_ZERO_ON : _MM_DENORMALS_ZERO_OFF);
  };
  apply();
#pragma omp parallel
  apply();
  return true;
#else
  (void)on;
  return false;
#endif
}

bool flush_denormal() {
#if defined(__SSE2__)
  return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON;
#else
  return false;
#endif
}

}  // namespace tg
