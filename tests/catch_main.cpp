// Catch2's main(), compiled once for the whole test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
