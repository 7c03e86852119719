// Catch2 main for tests that run on every rank of an MPI job: the job fails when any rank fails.
#include <mpi.h>

#include "support/catch_session.hpp"

#include "gcl/dist/mpi_communicator.hpp"

int main(int argc, char** argv) {
    gcl::dist::MpiSession session(argc, argv);
    const int failed = gcl_test::run_catch_session(argc, argv);
    int worst = 0;
    MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}
