// Catch2 main for the CUDA test binaries: without a GPU it says so and exits 77, which CTest
// reports as skipped; with one it runs every test case.
#include "support/catch_session.hpp"

#include <cstdio>

#include <cuda_runtime.h>

int main(int argc, char** argv) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("SKIPPED: no CUDA device available; the CUDA tests compiled but did not run\n");
        return 77;
    }
    return gcl_test::run_catch_session(argc, argv);
}
