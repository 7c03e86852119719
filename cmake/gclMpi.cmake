# Defines gcl::mpi (gcl::gcl + MPI for C++) when an MPI implementation is found: the target of
# programs that include gcl/dist/mpi_communicator.hpp. Used in the build tree and by the installed
# package config alike.
find_package(MPI QUIET COMPONENTS CXX)
if(MPI_CXX_FOUND AND NOT TARGET gcl::mpi)
    add_library(gcl::mpi INTERFACE IMPORTED)
    target_link_libraries(gcl::mpi INTERFACE gcl::gcl MPI::MPI_CXX)
endif()
