// Catch2 main for the CUDA test binaries: without a GPU it says so and exits 77, which CTest
// reports as skipped; with one it runs every test case.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include <cuda_runtime.h>

int main(int argc, char** argv) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("SKIPPED: no CUDA device available; the CUDA tests compiled but did not run\n");
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
