#pragma once
// dist::started_by_mpi_launcher: whether this process is one rank of a job that mpirun / mpiexec
// (OpenMPI, MPICH, Intel MPI) or a PMI-speaking scheduler such as Slurm's srun started. A
// program that also runs alone can initialise MPI only then, so that a plain start neither
// needs nor touches MPI. Needs no MPI headers.
#include <cstdlib>

namespace gcl::dist {

inline bool started_by_mpi_launcher() {
    for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"})
        if (std::getenv(variable) != nullptr) return true;
    return false;
}

}  // namespace gcl::dist
