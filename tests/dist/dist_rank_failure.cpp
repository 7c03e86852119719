// Rank 1 fails while the others wait in a collective: run_on_ranks must end the whole job with
// rank 1's message instead of leaving the others waiting forever.
#include <vector>

#include "gcl/dist/mpi_communicator.hpp"

int main(int argc, char** argv) {
    return gcl::dist::run_on_ranks(argc, argv, [](gcl::dist::MpiCommunicator& comm) {
        std::vector<double> g(1000, 1.0);
        comm.all_reduce_sum(g.data(), static_cast<gcl::index_t>(g.size()));  // every rank gets here
        if (comm.rank() == 1) gcl::fail("dist_rank_failure", "rank 1 cannot read its shard of the data set");
        comm.all_reduce_sum(g.data(), static_cast<gcl::index_t>(g.size()));  // the others wait here
        return 0;
    });
}
