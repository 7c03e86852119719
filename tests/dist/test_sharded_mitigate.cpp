// The sharded mitigation against surgery::mitigate on the gathered global G, on every rank of the
// job (run with 1, 2 and 3 ranks). Every rank builds every rank's G_r from its seed, so each can
// compute the single-process reference by itself.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "../surgery/surgery_data.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/dist/partition.hpp"
#include "gcl/dist/sharded_mitigate.hpp"
#include "gcl/surgery/mitigate.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace dist = gcl::dist;
namespace surgery = gcl::surgery;

namespace {

template <class T>
std::vector<Tensor<T>> all_ranks_gradients(index_t K, index_t P, int ranks, std::uint64_t seed) {
    std::vector<Tensor<T>> g;
    for (int r = 0; r < ranks; ++r) g.push_back(gcl::testing::conflicting_gradients<T>(K, P, seed * 100 + r));
    return g;
}

// G = mean over ranks, summed in rank order.
template <class T>
Tensor<T> global_mean(const std::vector<Tensor<T>>& g) {
    Tensor<T> G = Tensor<T>::copy_of(g[0].cview());
    for (std::size_t r = 1; r < g.size(); ++r)
        for (index_t i = 0; i < G.numel(); ++i) G.data()[i] += g[r].data()[i];
    const T inverse = T(1) / static_cast<T>(g.size());
    for (index_t i = 0; i < G.numel(); ++i) G.data()[i] *= inverse;
    return G;
}

template <class T>
double max_relative_difference(const T* a, const T* b, index_t n) {
    double worst = 0, scale = 0;
    for (index_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    for (index_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / scale);
    return worst;
}

}  // namespace

TEST_CASE("Partition covers every column once, in rank order", "[dist]") {
    for (const index_t P : {index_t{0}, index_t{1}, index_t{7}, index_t{100003}})
        for (const int S : {1, 2, 3, 8}) {
            const dist::Partition part(P, S);
            index_t next = 0;
            for (int r = 0; r < S; ++r) {
                CHECK(part.offsets[r] == next);
                CHECK(part.counts[r] >= P / S);
                CHECK(part.counts[r] <= P / S + 1);
                next += part.counts[r];
            }
            CHECK(next == P);
            CHECK(part.total() == P);
        }
    CHECK_THROWS_AS(dist::Partition(5, 0), gcl::Error);
}

TEMPLATE_TEST_CASE("sharded mitigation equals the single-process mitigation of the global G", "[dist]", float, double) {
    using T = TestType;
    dist::MpiCommunicator comm;
    const double tolerance = std::is_same_v<T, double> ? 1e-12 : 2e-5;
    for (const index_t K : {index_t{1}, index_t{2}, index_t{3}, index_t{5}})
        for (const index_t P : {index_t{1}, index_t{7}, index_t{1000}, index_t{100003}}) {
            CAPTURE(K, P, comm.size());
            // With P < K the rows are linearly dependent and projections leave float rounding noise
            // that decides later projections: a one-ulp change in G (the order of the sum over
            // ranks) can change the result there. Double keeps that noise below the eps floor.
            if (std::is_same_v<T, float> && P < K) continue;
            const auto g = all_ranks_gradients<T>(K, P, comm.size(), 7 + K);
            const Tensor<T> G = global_mean(g);
            const surgery::MitigateOptions options{.reduction = surgery::Reduction::sum, .seed = 3};
            Tensor<T> expected(Shape{P});
            const surgery::MitigateReport reference = surgery::mitigate<T>(G.cview(), expected.view(), options, 11);

            dist::ShardedGradMitigator<T> mitigator(options);
            Tensor<T> out(Shape{P});
            const surgery::MitigateReport report =
                mitigator.run({.local_grads = g[comm.rank()].cview(), .out = out.view(), .step = 11}, comm);
            CHECK(report.conflicting_pairs == reference.conflicting_pairs);
            CHECK(report.projections == reference.projections);
            CHECK(max_relative_difference(out.data(), expected.data(), P) <= tolerance);
            for (index_t k = 0; k < K; ++k) CHECK(report.weights(k) == Approx(reference.weights(k)).epsilon(std::is_same_v<T, double> ? 1e-9 : 1e-5));

            // The slice alone, for an optimizer whose state is sharded the same way.
            const dist::Partition part(P, comm.size());
            const index_t off = part.offsets[comm.rank()], n = part.counts[comm.rank()];
            Tensor<T> slice(Shape{n});
            mitigator.run({.local_grads = g[comm.rank()].cview(), .out = slice.view(), .step = 11, .gather = false}, comm);
            if (n > 0) CHECK(max_relative_difference(slice.data(), expected.data() + off, n) <= tolerance * 10);
        }
}

TEST_CASE("sharded mitigation meets conflicts and moves (K + 1) / 2 times plain data parallel's bytes", "[dist]") {
    dist::MpiCommunicator comm;
    const index_t K = 3, P = 300000;
    auto g = all_ranks_gradients<float>(K, P, comm.size(), 5);
    for (auto& r : g)  // row 1 points against row 0: a conflict in every rank's and in the global G
        for (index_t p = 0; p < P; ++p) r(1, p) -= 3 * r(0, p);
    dist::ShardedGradMitigator<float> mitigator({.seed = 1});
    Tensor<float> out(Shape{P});
    const dist::Traffic before = comm.traffic();
    const surgery::MitigateReport report = mitigator.run({.local_grads = g[comm.rank()].cview(), .out = out.view()}, comm);
    CHECK(report.conflicting_pairs > 0);
    const std::uint64_t sharded = comm.traffic().bytes_sent - before.bytes_sent;

    Tensor<float> plain = Tensor<float>::copy_of(g[comm.rank()].cview().select(0, 0));
    const dist::Traffic mid = comm.traffic();
    dist::average_gradients(plain.view(), comm);
    const std::uint64_t all_reduce = comm.traffic().bytes_sent - mid.bytes_sent;
    if (comm.size() == 1) {
        CHECK(sharded == 0);
        CHECK(all_reduce == 0);
    } else {
        // Reduce-scatter of K P plus all-gather of P, against an all-reduce of P; the K x K Gram
        // matrix adds a few hundred bytes.
        const double ratio = static_cast<double>(sharded) / static_cast<double>(all_reduce);
        CHECK(ratio == Approx((K + 1) / 2.0).epsilon(0.001));
    }
}

TEST_CASE("average_gradients gives every rank the mean", "[dist]") {
    dist::MpiCommunicator comm;
    const auto g = all_ranks_gradients<double>(1, 1001, comm.size(), 9);
    Tensor<double> mine = Tensor<double>::copy_of(g[comm.rank()].cview().select(0, 0));
    dist::average_gradients(mine.view(), comm);
    const Tensor<double> expected = global_mean(g);
    CHECK(max_relative_difference(mine.data(), expected.data(), 1001) <= 1e-15);
}

TEST_CASE("split_node keeps the ranks of this node in order", "[dist]") {
    dist::MpiCommunicator comm;
    // mpirun starts every rank of the test on this machine: one node holds them all.
    dist::MpiCommunicator node = comm.split_node();
    CHECK(node.size() == comm.size());
    CHECK(node.rank() == comm.rank());
    // It is a communicator of its own: a sum over it is the sum over the node's ranks.
    std::int64_t one = 1;
    node.all_reduce_sum(&one, 1);
    CHECK(one == comm.size());
}

TEST_CASE("a NaN on one rank is an error on every rank, not a hang", "[dist]") {
    dist::MpiCommunicator comm;
    auto g = all_ranks_gradients<float>(2, 5000, comm.size(), 4);
    if (comm.rank() == comm.size() - 1) g[comm.rank()](1, 4321) = std::numeric_limits<float>::quiet_NaN();
    dist::ShardedGradMitigator<float> mitigator;
    Tensor<float> out(Shape{5000});
    try {
        mitigator.run({.local_grads = g[comm.rank()].cview(), .out = out.view()}, comm);
        FAIL("no error");
    } catch (const gcl::Error& e) {
        CHECK(std::string(e.what()).find("global gradient row 1 is not finite") != std::string::npos);
    }
    // The ranks are still in step: a collective after the error goes through.
    double one = 1;
    comm.all_reduce_sum(&one, 1);
    CHECK(one == comm.size());
}

TEST_CASE("bad arguments name what is wrong", "[dist]") {
    dist::MpiCommunicator comm;
    dist::ShardedGradMitigator<double> mitigator;
    Tensor<double> G(Shape{2, 10});
    Tensor<double> wrong(Shape{9});
    try {
        mitigator.run({.local_grads = G.cview(), .out = wrong.view()}, comm);
        FAIL("no error");
    } catch (const gcl::Error& e) {
        CHECK(std::string(e.what()).find("out must be a contiguous [10] vector") != std::string::npos);
    }
    std::vector<gcl::index_t> counts(static_cast<std::size_t>(comm.size()) + 1, 1);
    double x = 0, y = 0;
    CHECK_THROWS_WITH(comm.all_gather(&x, &y, std::span<const gcl::index_t>(counts)),
                      Catch::Contains("counts for " + std::to_string(comm.size()) + " ranks"));
}
