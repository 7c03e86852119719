// Catch2's implementation, compiled once for every test binary (gcl_catch_session). The mains
// (catch_main.cpp and the MPI, CUDA and nibabel ones) call run_catch_session instead of
// including it again.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/catch_session.hpp"

namespace gcl_test {
int run_catch_session(int argc, char** argv) { return Catch::Session().run(argc, argv); }
}  // namespace gcl_test
