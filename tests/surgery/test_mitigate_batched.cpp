#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "gcl/surgery/mitigate.hpp"
#include "gcl/surgery/mitigate_batched.hpp"
#include "gcl/surgery/reference/mitigate.hpp"
#include "surgery_data.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::surgery::MitigateOptions;
using gcl::surgery::MitigateReport;
using gcl::surgery::Reduction;

TEMPLATE_TEST_CASE("BatchedGradMitigator matches the reference per sample", "[surgery][mitigate]", float, double) {
    using T = TestType;
    const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    index_t projected = 0;
    for (index_t K = 1; K <= 8; ++K)
        for (index_t D : {1, 5, 64, 130})
            for (index_t N : {1, 33}) {
                // Label-major K x N x D, as the losses produce it; the kernel reads it transposed.
                Tensor<T> g = gcl::testing::conflicting_gradients<T>(K, N * D, 10 * K + D + N);
                g.reshape(Shape{K, N, D});
                const gcl::ConstView<T> per_sample = g.cview().transpose(0, 1);
                const MitigateOptions options{.reduction = K % 2 ? Reduction::sum : Reduction::mean, .seed = 3};
                Tensor<T> fast(Shape{N, D}), ref(Shape{N, D});
                const MitigateReport r = gcl::surgery::mitigate_batched<T>(per_sample, fast.view(), options, 5);
                const MitigateReport rr = gcl::surgery::reference::mitigate_batched<T>(per_sample, ref.view(), options, 5);
                INFO("K = " << K << ", D = " << D << ", N = " << N);
                CHECK(r.projections == rr.projections);
                CHECK(r.conflicting_pairs == rr.conflicting_pairs);
                CHECK(r.weights.shape() == Shape{N, K});
                projected += r.projections;
                double worst = 0;
                for (index_t n = 0; n < N; ++n)
                    for (index_t d = 0; d < D; ++d) {
                        double scale = 0;
                        for (index_t k = 0; k < K; ++k) scale += std::abs(r.weights(n, k) * double(per_sample(n, k, d)));
                        worst = std::max(worst, std::abs(double(fast(n, d)) - double(ref(n, d))) / (rtol * scale + 1e-30));
                    }
                CHECK(worst <= 1.0);
            }
    CHECK(projected > 100);
}

TEST_CASE("BatchedGradMitigator: sample_ids seed each sample's orders as its index in a larger batch",
          "[surgery][mitigate]") {
    // Rows 5..9 of a batch of 12, mitigated alone with their ids, equal the whole batch's rows.
    const index_t K = 5, N = 12, D = 40, first = 5, count = 5;
    Tensor<double> g = gcl::testing::conflicting_gradients<double>(K, N * D, 31);
    g.reshape(Shape{K, N, D});
    Tensor<double> whole(Shape{N, D}), part(Shape{count, D}), unseeded(Shape{count, D});
    const MitigateReport r = gcl::surgery::mitigate_batched<double>(g.cview().transpose(0, 1), whole.view(), {.seed = 4}, 7);
    REQUIRE(r.projections > 0);
    const Tensor<double> rows = Tensor<double>::copy_of(g.cview().narrow(1, first, count));
    std::vector<std::uint64_t> ids;
    for (index_t n = 0; n < count; ++n) ids.push_back(static_cast<std::uint64_t>(first + n));
    gcl::surgery::mitigate_batched<double>(rows.cview().transpose(0, 1), part.view(), {.seed = 4}, 7, ids.data());
    gcl::surgery::mitigate_batched<double>(rows.cview().transpose(0, 1), unseeded.view(), {.seed = 4}, 7);
    double differs = 0;
    for (index_t n = 0; n < count; ++n)
        for (index_t d = 0; d < D; ++d) {
            CHECK(part(n, d) == whole(first + n, d));
            differs = std::max(differs, std::abs(unseeded(n, d) - whole(first + n, d)));
        }
    CHECK(differs > 1e-6);  // with K = 5 the orders matter
}

TEST_CASE("BatchedGradMitigator: sample n is the K x P mitigation with sample index n", "[surgery][mitigate]") {
    // Sample 0 uses the same orders as the K x P kernel (sample index 0).
    const index_t K = 4, D = 300;
    Tensor<double> g = gcl::testing::conflicting_gradients<double>(K, D, 21);
    Tensor<double> one(Shape{D}), batched(Shape{1, D});
    gcl::surgery::mitigate<double>(g.cview(), one.view(), {.seed = 8}, 2);
    gcl::surgery::mitigate_batched<double>(g.cview().reshape(Shape{1, K, D}), batched.view(), {.seed = 8}, 2);
    for (index_t d = 0; d < D; ++d) CHECK(batched(0, d) == Approx(one(d)).epsilon(1e-12).margin(1e-12));
}

TEST_CASE("BatchedGradMitigator raises gcl::Error on bad input", "[surgery][mitigate]") {
    Tensor<float> g = gcl::testing::conflicting_gradients<float>(3, 40 * 8, 1);
    g.reshape(Shape{40, 3, 8});
    Tensor<float> out(Shape{40, 8});
    g(17, 1, 5) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(g.cview(), out.view()),
                      Catch::Contains("sample 17") && Catch::Contains("row 1") && Catch::Contains("column 5"));
    Tensor<float> wrong(Shape{40, 7});
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(g.cview(), wrong.view()),
                      Catch::Contains("out must have shape [40, 8]"));
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(g.cview().reshape(Shape{40, 24}), out.view()),
                      Catch::Contains("N x K x D"));
    CHECK_THROWS_WITH(gcl::surgery::mitigate_batched<float>(g.cview(), g.view().select(1, 0)),
                      Catch::Contains("overlaps"));
}
