# Header-only dependencies (and Google Benchmark's shared library) taken from a bundle instead of
# the system's packages, for machines where nothing can be installed: the GPU machine that
# scripts/device_check.sh runs on has CMake, ninja and CUDA but no Debian -dev packages, and no
# network. scripts/device_bundle.sh makes the bundle from this machine's packages. Each target
# is the one find_package would have defined, so the rest of the build does not change.
if(TINYGROK_DEPS_DIR)
  set(_inc "${TINYGROK_DEPS_DIR}/include")
  foreach(_header IN ITEMS eigen3/Eigen/Core nlohmann/json.hpp CLI/CLI.hpp catch2/catch.hpp
                           benchmark/benchmark.h)
    if(NOT EXISTS "${_inc}/${_header}")
      message(FATAL_ERROR "TINYGROK_DEPS_DIR=${TINYGROK_DEPS_DIR} has no include/${_header}; "
                          "make the bundle with scripts/device_bundle.sh")
    endif()
  endforeach()
  add_library(Eigen3::Eigen INTERFACE IMPORTED GLOBAL)
  set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}/eigen3")
  foreach(_target IN ITEMS nlohmann_json::nlohmann_json CLI11::CLI11 Catch2::Catch2)
    add_library(${_target} INTERFACE IMPORTED GLOBAL)
    set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
  endforeach()
  add_library(benchmark::benchmark SHARED IMPORTED GLOBAL)
  set_target_properties(benchmark::benchmark PROPERTIES
    IMPORTED_LOCATION "${TINYGROK_DEPS_DIR}/lib/libbenchmark.so.1debian"
    INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
  message(STATUS "tinygrok: dependencies from the bundle in ${TINYGROK_DEPS_DIR}")
endif()
