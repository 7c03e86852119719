// Catch2 main for tests that run on every rank of an MPI job: the job fails when any rank fails.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <catch2/catch.hpp>

#include "gcl/dist/mpi_communicator.hpp"

int main(int argc, char** argv) {
    gcl::dist::MpiSession session(argc, argv);
    const int failed = Catch::Session().run(argc, argv);
    int worst = 0;
    MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}
