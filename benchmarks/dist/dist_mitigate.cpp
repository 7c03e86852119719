// Data-parallel gradient combination for one step, on S ranks of an MPI job: bytes each rank
// sends and time per step, for
//   plain     all-reduce of the summed gradient (P values): data parallel without surgery
//   naive     all-reduce of the K x P per-label gradients, then GradMitigator on every rank
//   sharded   ShardedGradMitigator: reduce-scatter K x P, K x K all-reduce, all-gather P
// Every rank checks that sharded and naive give the same combined gradient.
//
//   mpirun -np 2 build/benchmarks/dist_mitigate [--K 3] [--P 1000000] [--steps 20]
// Last line (rank 0):
//   dist_mitigate S=<S> K=<K> P=<P> float: plain <a> ms <x> MB, naive <b> ms <y> MB, sharded <c> ms <z> MB; bytes sharded/plain <r>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/dist/sharded_mitigate.hpp"
#include "gcl/surgery/mitigate.hpp"
#include "rank_timing.hpp"

using gcl::index_t;

namespace {

struct Options {
    index_t K = 3;
    index_t P = 1000000;
    int steps = 20;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        gcl::check(i + 1 < argc, "dist_mitigate", "missing value after ", a);
        const std::string v = argv[++i];
        char* end = nullptr;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        gcl::check(end && *end == '\0' && n > 0, "dist_mitigate", a, " needs a positive integer, got '", v, "'");
        if (a == "--K") o.K = n;
        else if (a == "--P") o.P = n;
        else if (a == "--steps") o.steps = static_cast<int>(n);
        else gcl::fail("dist_mitigate", "unknown argument '", a, "' (--K, --P, --steps)");
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    return gcl::dist::run_on_ranks(argc, argv, [&](gcl::dist::MpiCommunicator& comm) {
        const Options o = parse(argc, argv);
        gcl::Tensor<float> G(gcl::Shape{o.K, o.P});
        gcl::Rng rng(1000 + comm.rank());
        gcl::fill_normal<float>(G.view(), rng);
        gcl::Tensor<float> summed(gcl::Shape{o.P}), naive_out(gcl::Shape{o.P}), sharded_out(gcl::Shape{o.P});
        gcl::Tensor<float> all(gcl::Shape{o.K, o.P});
        const gcl::surgery::MitigateOptions mitigate{.seed = 1};
        gcl::dist::ShardedGradMitigator<float> sharded(mitigate);

        const gcl::bench::RankTiming plain = gcl::bench::measure_on_ranks(comm, o.steps, [&] {
            std::copy(G.data(), G.data() + o.P, summed.data());
            gcl::dist::average_gradients(summed.view(), comm);
        });
        const gcl::bench::RankTiming naive = gcl::bench::measure_on_ranks(comm, o.steps, [&] {
            std::copy(G.data(), G.data() + o.K * o.P, all.data());
            gcl::dist::average_gradients(all.view(), comm);
            gcl::surgery::mitigate<float>(all.cview(), naive_out.view(), mitigate, 0);
        });
        const gcl::bench::RankTiming shard = gcl::bench::measure_on_ranks(comm, o.steps, [&] {
            sharded.run({.local_grads = G.cview(), .out = sharded_out.view(), .step = 0}, comm);
        });

        double worst = 0, scale = 0;
        for (index_t p = 0; p < o.P; ++p) scale = std::max(scale, std::abs(static_cast<double>(naive_out(p))));
        for (index_t p = 0; p < o.P; ++p)
            worst = std::max(worst, std::abs(static_cast<double>(sharded_out(p)) - naive_out(p)) / scale);
        gcl::check(worst <= 1e-4, "dist_mitigate", "sharded and naive results differ by ", worst, " (relative)");

        if (comm.rank() == 0) {
            const double mb = 1e-6;
            std::printf("dist_mitigate S=%d K=%lld P=%lld float: plain %.2f ms %.2f MB, naive %.2f ms %.2f MB, sharded %.2f ms "
                        "%.2f MB; bytes sharded/plain %.3f\n",
                        comm.size(), static_cast<long long>(o.K), static_cast<long long>(o.P), plain.median_ms,
                        plain.bytes_sent * mb, naive.median_ms, naive.bytes_sent * mb, shard.median_ms,
                        shard.bytes_sent * mb, plain.bytes_sent > 0 ? shard.bytes_sent / plain.bytes_sent : 0.0);
        }
        return 0;
    });
}
