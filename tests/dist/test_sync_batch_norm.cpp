// Synchronised batch norm against the layer on the concatenated batch, and its finite-difference
// gradient check across the ranks, in double. Every rank builds the whole batch from one seed and
// runs the synchronised layer on its contiguous share of the rows (any number of ranks).
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "gcl/core/random.hpp"
#include "gcl/dist/batch_statistics.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/dist/partition.hpp"
#include "gcl/nn/batch_norm1d.hpp"
#include "gcl/nn/batch_norm2d.hpp"
#include "gcl/testing/projection.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace dist = gcl::dist;
namespace nn = gcl::nn;

namespace {

using Arena = nn::ParameterArena<double>;

// Rows [first, first + count) of x (a copy).
Tensor<double> rows(const Tensor<double>& x, index_t first, index_t count) {
    return Tensor<double>::copy_of(x.cview().narrow(0, first, count));
}

void require_close(const double* a, const double* b, index_t n, double tol, const char* what) {
    double worst = 0;
    for (index_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
    INFO(what << ": worst difference " << worst);
    REQUIRE(worst <= tol);
}

struct Setup {
    dist::MpiCommunicator comm;
    dist::SynchronisedBatchStatistics<dist::MpiCommunicator> sync{comm};
    index_t first = 0, count = 0;
    explicit Setup(index_t N) {
        const dist::Partition part(N, comm.size());
        first = part.offsets[comm.rank()];
        count = part.counts[comm.rank()];
    }
};

// The layer's weight and bias set to the same random values on every rank.
void randomise_affine(Arena& arena, gcl::Rng& rng) {
    auto g = arena.value("bn.weight");
    auto b = arena.value("bn.bias");
    for (index_t c = 0; c < g.numel(); ++c) {
        g.data()[c] = rng.uniform(0.5, 1.5);
        b.data()[c] = rng.uniform(-1.0, 1.0);
    }
}

// One training forward and backward pass of a layer: its output and dx.
struct Pass {
    Tensor<double> y, dx;
};
template <class Layer>
Pass forward_backward(Layer& layer, Arena& arena, const Tensor<double>& x, const Tensor<double>& dy) {
    Pass p;
    p.y = Tensor<double>::copy_of(layer.forward(x.cview()));
    arena.begin_backward(gcl::WriteMode::overwrite);
    p.dx = Tensor<double>::copy_of(layer.backward(dy.cview()));
    arena.end_backward();
    return p;
}

}  // namespace

TEST_CASE("Synchronised BatchNorm2d equals BatchNorm2d on the concatenated batch", "[dist][batch_norm]") {
    const index_t N = 7, C = 3;
    Setup s(N);
    gcl::Rng rng(5);
    const Tensor<double> x = gcl::testing::random_tensor<double>(Shape{N, C, 3, 4}, rng, -2, 3);
    const Tensor<double> dy = gcl::testing::random_tensor<double>(Shape{N, C, 3, 4}, rng);

    Arena whole_arena, part_arena;
    nn::BatchNorm2d<double> whole(nn::Scope<double>(whole_arena, 1).child("bn"), {.channels = C, .momentum = 0.3});
    nn::BatchNorm2d<double> part(nn::Scope<double>(part_arena, 1).child("bn"), {.channels = C, .momentum = 0.3});
    gcl::Rng affine(9);
    randomise_affine(whole_arena, affine);
    affine = gcl::Rng(9);
    randomise_affine(part_arena, affine);
    part_arena.set_batch_statistics_reducer(&s.sync);

    const Pass expected = forward_backward(whole, whole_arena, x, dy);
    const Tensor<double> x_part = rows(x, s.first, s.count);
    const Pass got = forward_backward(part, part_arena, x_part, rows(dy, s.first, s.count));
    const Tensor<double>& y = got.y;
    const index_t row = C * 12;
    require_close(y.data(), expected.y.data() + s.first * row, s.count * row, 1e-12, "y");
    require_close(got.dx.data(), expected.dx.data() + s.first * row, s.count * row, 1e-12, "dx");
    require_close(part_arena.flat_buffers().data(), whole_arena.flat_buffers().data(), whole_arena.flat_buffers().numel(),
                  1e-12, "running estimates");
    // The ranks' parameter gradients add up to the whole batch's.
    Tensor<double> g = Tensor<double>::copy_of(part_arena.flat_grads());
    s.comm.all_reduce_sum(g.data(), g.numel());
    require_close(g.data(), whole_arena.flat_grads().data(), g.numel(), 1e-12, "dgamma, dbeta");

    // Without the reducer the layer is local again: its rows' own statistics, which differ.
    part_arena.set_batch_statistics_reducer(nullptr);
    Arena own_arena;
    nn::BatchNorm2d<double> own(nn::Scope<double>(own_arena, 1).child("bn"), {.channels = C});
    gcl::Rng again(9);
    randomise_affine(own_arena, again);
    const Tensor<double> y_own = Tensor<double>::copy_of(own.forward(x_part.cview()));
    const auto y_local = part.forward(x_part.cview());
    require_close(y_local.data(), y_own.data(), y_own.numel(), 0, "local statistics");
    if (s.comm.size() > 1) {
        double differs = 0;
        for (index_t i = 0; i < y.numel(); ++i) differs = std::max(differs, std::abs(y_local.data()[i] - y.data()[i]));
        CHECK(differs > 1e-3);
    }
}

TEST_CASE("Synchronised BatchNorm1d equals BatchNorm1d on the concatenated batch", "[dist][batch_norm]") {
    const index_t N = 8, C = 5;
    Setup s(N);
    gcl::Rng rng(6);
    const Tensor<double> x = gcl::testing::random_tensor<double>(Shape{N, C}, rng, -1, 2);
    const Tensor<double> dy = gcl::testing::random_tensor<double>(Shape{N, C}, rng);
    Arena whole_arena, part_arena;
    nn::BatchNorm1d<double> whole(nn::Scope<double>(whole_arena, 1).child("bn"), {.channels = C});
    nn::BatchNorm1d<double> part(nn::Scope<double>(part_arena, 1).child("bn"), {.channels = C});
    part_arena.set_batch_statistics_reducer(&s.sync);
    const Pass expected = forward_backward(whole, whole_arena, x, dy);
    const Pass got = forward_backward(part, part_arena, rows(x, s.first, s.count), rows(dy, s.first, s.count));
    require_close(got.y.data(), expected.y.data() + s.first * C, s.count * C, 1e-12, "y");
    require_close(got.dx.data(), expected.dx.data() + s.first * C, s.count * C, 1e-12, "dx");
}

// L = sum over ranks of <w, y> with y the synchronised layer's output on each rank's rows:
// central differences of L in every element of the whole batch (each perturbed on the rank that
// owns it) and in gamma and beta (perturbed on every rank: they are replicated).
TEST_CASE("Synchronised BatchNorm2d: finite-difference gradients across the ranks", "[dist][batch_norm][gradcheck]") {
    const index_t N = 5, C = 2, HW = 4;
    Setup s(N);
    gcl::Rng rng(7);
    Tensor<double> x = gcl::testing::random_tensor<double>(Shape{N, C, 2, 2}, rng, -2, 2);
    const Tensor<double> w = gcl::testing::random_tensor<double>(Shape{N, C, 2, 2}, rng);
    Arena arena;
    nn::BatchNorm2d<double> bn(nn::Scope<double>(arena, 1).child("bn"), {.channels = C});
    gcl::Rng affine(3);
    randomise_affine(arena, affine);
    arena.set_batch_statistics_reducer(&s.sync);
    Tensor<double> x_part = rows(x, s.first, s.count);
    const Tensor<double> w_part = rows(w, s.first, s.count);

    const auto loss = [&] {
        const auto y = bn.forward(x_part.cview());
        double l = 0;
        for (index_t i = 0; i < y.numel(); ++i) l += w_part.data()[i] * y.data()[i];
        s.comm.all_reduce_sum(&l, 1);
        return l;
    };
    (void)loss();
    arena.begin_backward(gcl::WriteMode::overwrite);
    const Tensor<double> dx = Tensor<double>::copy_of(bn.backward(w_part.cview()));
    arena.end_backward();
    Tensor<double> dparams = Tensor<double>::copy_of(arena.flat_grads());
    s.comm.all_reduce_sum(dparams.data(), dparams.numel());

    const double h = 1e-6;
    double worst = 0;
    const index_t row = C * HW;
    for (index_t e = 0; e < N * row; ++e) {
        const bool mine = e >= s.first * row && e < (s.first + s.count) * row;
        double* v = mine ? x_part.data() + (e - s.first * row) : nullptr;
        const double saved = mine ? *v : 0;
        if (mine) *v = saved + h;
        const double up = loss();
        if (mine) *v = saved - h;
        const double down = loss();
        if (mine) {
            *v = saved;
            worst = std::max(worst, std::abs((up - down) / (2 * h) - dx.data()[e - s.first * row]));
        }
    }
    auto params = arena.flat_values();
    for (index_t p = 0; p < params.numel(); ++p) {
        const double saved = params.data()[p];
        params.data()[p] = saved + h;
        const double up = loss();
        params.data()[p] = saved - h;
        const double down = loss();
        params.data()[p] = saved;
        worst = std::max(worst, std::abs((up - down) / (2 * h) - dparams.data()[p]));
    }
    INFO("worst |finite difference - analytic| " << worst);
    REQUIRE(worst < 1e-7);
}
