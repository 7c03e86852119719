// Softmax, log-softmax, the L2 normalisation (eps and strict) and the contrastive losses (SupCon,
// pixel contrast) on the GPU against the same calls on the CPU, float and double. The softmaxes
// differ from the CPU only through CUDA's exp and log and the normalisation through fused
// multiply-adds, so they are compared within rounding; the pair passes given the same input,
// the pixel gathers and scatters give the CPU's bits. Skipped (exit 77) without a GPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "gcl/core/random.hpp"
#include "gcl/cuda.cuh"
#include "gcl/loss/pixel_contrast.hpp"
#include "gcl/loss/supcon.hpp"
#include "gcl/ops/normalize.hpp"
#include "gcl/ops/softmax.hpp"
#include "gcl/testing/projection.hpp"
#include "support/errors.hpp"
#include "support/cuda_parity.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl_test::check_bitwise;
using gcl_test::check_close;
using gcl_test::error_of;
using gcl_test::tolerance;
namespace loss = gcl::loss;
namespace ops = gcl::ops;

namespace {

// The loss-level tolerance: GEMMs (Eigen vs cuBLAS) feed the softmax, then two more GEMMs.
template <class T>
double loss_tolerance() {
    return std::is_same_v<T, float> ? 2e-4 : 1e-10;
}

template <class T>
void check_contrast_close(const loss::ContrastResult<T>& cpu, const loss::ContrastResult<T, gcl::cuda>& dev) {
    const double rtol = loss_tolerance<T>();
    check_close(cpu.losses, gcl::to_host(dev.losses), rtol);
    CHECK(dev.total == Approx(cpu.total).epsilon(rtol).margin(rtol));
    check_close(cpu.grads, gcl::to_host(dev.grads), rtol);
    check_close(cpu.grad_sum, gcl::to_host(dev.grad_sum), rtol);
    check_close(cpu.embeddings, gcl::to_host(dev.embeddings), rtol);
    CHECK(dev.anchors_without_positives == cpu.anchors_without_positives);
    CHECK(dev.normalized == cpu.normalized);
    if (cpu.normalized) check_close(cpu.norms, gcl::to_host(dev.norms), rtol);
    REQUIRE(cpu.pair_grads.rank() == dev.pair_grads.rank());
    if (cpu.pair_grads.rank() == 3) check_close(cpu.pair_grads, gcl::to_host(dev.pair_grads), rtol);
}

}  // namespace

TEMPLATE_TEST_CASE("ops softmax and log-softmax on cuda equal the CPU within rounding", "[cuda][ops][softmax]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(51);
    const Tensor<T> x = gcl::testing::random_tensor<T>(Shape{4, 9, 13}, rng, T(-20), T(20));
    const Tensor<T> dy = gcl::testing::random_tensor<T>(x.shape(), rng);
    const auto x_dev = gcl::to_device(x), dy_dev = gcl::to_device(dy);
    for (int dim : {0, 1, -1}) {
        for (bool log : {false, true}) {
            INFO("dim " << dim << " log " << log);
            const auto forward = [log](auto in, auto out, int d) {
                log ? ops::log_softmax_forward<T>(in, out, d) : ops::softmax_forward<T>(in, out, d);
            };
            const auto backward = [log](auto g, auto y, auto dx, int d) {
                log ? ops::log_softmax_backward<T>(g, y, dx, d) : ops::softmax_backward<T>(g, y, dx, d);
            };
            Tensor<T> y(x.shape()), dx(x.shape());
            Tensor<T, gcl::cuda> y_dev(x.shape()), dx_dev(x.shape());
            forward(x.cview(), y.view(), dim);
            forward(x_dev.cview(), y_dev.view(), dim);
            check_close(y, gcl::to_host(y_dev), tolerance<T>());
            backward(dy.cview(), y.cview(), dx.view(), dim);
            backward(dy_dev.cview(), y_dev.cview(), dx_dev.view(), dim);
            check_close(dx, gcl::to_host(dx_dev), tolerance<T>());

            // In place (y = x, dx = dy) and repeated: the same bits as the first device run.
            Tensor<T, gcl::cuda> in_place = x_dev;
            forward(in_place.cview(), in_place.view(), dim);
            check_bitwise(gcl::to_host(y_dev), gcl::to_host(in_place));
            Tensor<T, gcl::cuda> grad_in_place = dy_dev;
            backward(grad_in_place.cview(), y_dev.cview(), grad_in_place.view(), dim);
            check_bitwise(gcl::to_host(dx_dev), gcl::to_host(grad_in_place));
        }
    }
    // A NaN makes its line NaN on both devices.
    Tensor<T> with_nan = x;
    with_nan(1, 4, 7) = std::numeric_limits<T>::quiet_NaN();
    Tensor<T, gcl::cuda> y_dev(x.shape());
    ops::softmax_forward<T>(gcl::to_device(with_nan).cview(), y_dev.view(), 1);
    const Tensor<T> y_back = gcl::to_host(y_dev);
    for (index_t c = 0; c < 9; ++c) CHECK(std::isnan(y_back(1, c, 7)));
    CHECK(!std::isnan(y_back(1, 4, 6)));
}

TEMPLATE_TEST_CASE("ops L2 normalisation on cuda equals the CPU: eps and strict modes", "[cuda][ops][normalize]", float,
                   double) {
    using T = TestType;
    gcl::Rng rng(52);
    Tensor<T> x = gcl::testing::random_tensor<T>(Shape{5, 7, 3}, rng, T(-2), T(2));
    for (index_t c = 0; c < 7; ++c) x(2, c, 1) = T(0);         // a zero line along dim 1: clamped by eps
    for (index_t c = 0; c < 7; ++c) x(3, c, 0) *= T(1e-14);   // a tiny one
    const Tensor<T> dy = gcl::testing::random_tensor<T>(x.shape(), rng);
    const auto x_dev = gcl::to_device(x), dy_dev = gcl::to_device(dy);
    for (int dim : {0, 1, -1}) {
        INFO("dim " << dim);
        Tensor<T> y(x.shape()), dx(x.shape());
        Tensor<T, gcl::cuda> y_dev(x.shape()), dx_dev(x.shape());
        ops::l2_normalize_forward<T>(x.cview(), y.view(), dim, 1e-8);
        ops::l2_normalize_forward<T>(x_dev.cview(), y_dev.view(), dim, 1e-8);
        check_close(y, gcl::to_host(y_dev), tolerance<T>());
        ops::l2_normalize_backward<T>(dy.cview(), x.cview(), dx.view(), dim, 1e-8);
        ops::l2_normalize_backward<T>(dy_dev.cview(), x_dev.cview(), dx_dev.view(), dim, 1e-8);
        check_close(dx, gcl::to_host(dx_dev), tolerance<T>() * 10);
    }

    // Strict mode along the rows of a matrix, with huge and tiny rows in double.
    Tensor<T> z = gcl::testing::random_tensor<T>(Shape{6, 4}, rng);
    if constexpr (std::is_same_v<T, double>) {
        for (index_t c = 0; c < 4; ++c) z(0, c) *= 1e200;
        for (index_t c = 0; c < 4; ++c) z(1, c) *= 1e-160;
    }
    const Tensor<T> du = gcl::testing::random_tensor<T>(z.shape(), rng);
    Tensor<T> u(z.shape()), norms(Shape{6}), dz(z.shape());
    Tensor<T, gcl::cuda> u_dev(z.shape()), norms_dev(Shape{6}), dz_dev(z.shape());
    const auto z_dev = gcl::to_device(z);
    ops::l2_normalize_strict_forward<T>(z.cview(), u.view(), norms.view(), 1);
    ops::l2_normalize_strict_forward<T>(z_dev.cview(), u_dev.view(), norms_dev.view(), 1);
    check_close(u, gcl::to_host(u_dev), tolerance<T>());
    const Tensor<T> norms_back = gcl::to_host(norms_dev);
    for (index_t i = 0; i < 6; ++i)
        CHECK(static_cast<double>(norms_back(i)) ==
              Approx(static_cast<double>(norms(i))).epsilon(tolerance<T>()).margin(0));
    ops::l2_normalize_strict_backward<T>(du.cview(), u.cview(), norms.cview(), dz.view(), 1);
    ops::l2_normalize_strict_backward<T>(gcl::to_device(du).cview(), u_dev.cview(), norms_dev.cview(), dz_dev.view(), 1);
    check_close(dz, gcl::to_host(dz_dev), tolerance<T>());

    // The norms alone, of every line: zero, tiny and huge ones included.
    for (int dim : {0, 1, -1}) {
        INFO("l2_norm, dim " << dim);
        const int d = dim < 0 ? dim + 3 : dim;
        Tensor<T> n(ops::remove_dim(x.shape(), d));
        Tensor<T, gcl::cuda> n_dev(n.shape());
        ops::l2_norm<T>(x.cview(), n.view(), dim);
        ops::l2_norm<T>(x_dev.cview(), n_dev.view(), dim);
        check_close(n, gcl::to_host(n_dev), tolerance<T>());
    }

    // A vector without a direction is the CPU's gcl::Error on the GPU: the first offending line.
    const auto strict_error = [](const Tensor<T>& in, auto device) {
        using D = decltype(device);
        Tensor<T, D> in_d(in.shape()), out(in.shape()), n(Shape{in.dim(0)});
        if constexpr (std::is_same_v<D, gcl::cuda>)
            in_d = gcl::to_device(in);
        else
            in_d = in;
        return error_of([&] { ops::l2_normalize_strict_forward<T>(in_d.cview(), out.view(), n.view(), 1, "op", "row"); });
    };
    Tensor<T> bad = z;
    for (index_t c = 0; c < 4; ++c) bad(3, c) = T(0);
    for (index_t c = 0; c < 4; ++c) bad(5, c) = T(0);
    const std::string zero = strict_error(bad, gcl::cpu{});
    CHECK_THAT(zero, Catch::Contains("row 3 is zero"));
    CHECK(strict_error(bad, gcl::cuda{}) == zero);
    for (index_t c = 0; c < 4; ++c) bad(4, c) = std::numeric_limits<T>::max();
    for (index_t c = 0; c < 4; ++c) bad(3, c) = T(1);
    const std::string overflow = strict_error(bad, gcl::cpu{});
    CHECK_THAT(overflow, Catch::Contains("the norm of row 4 overflows"));
    CHECK(strict_error(bad, gcl::cuda{}) == overflow);
    bad(5, 2) = std::numeric_limits<T>::quiet_NaN();
    const std::string non_finite = strict_error(bad, gcl::cpu{});
    CHECK_THAT(non_finite, Catch::Contains("row 5 holds a non-finite value at 2"));
    CHECK(strict_error(bad, gcl::cuda{}) == non_finite);
}

TEMPLATE_TEST_CASE("supcon on cuda equals the CPU: losses, gradients, pair gradients, errors", "[cuda][loss][supcon]",
                   float, double) {
    using T = TestType;
    gcl::Rng rng(53);
    const index_t B = 6, A = 2 * B;
    const Tensor<T> z = gcl::testing::random_tensor<T>(Shape{A, 8}, rng);
    const auto z_dev = gcl::to_device(z);
    const Tensor<index_t> patient = Tensor<index_t>::from(Shape{B}, {0, 0, 1, 1, 2, -1});
    const Tensor<double> position = Tensor<double>::from(Shape{B}, {0.1, 0.5, 0.15, 0.9, 0.55, 0.3});
    loss::PositivePairs discrete(B), mixed(B);
    discrete.add_labels(patient.cview()).add_bins<double>(position.cview(), 3);  // keys
    mixed.add_labels(patient.cview()).add_threshold<double>(position.cview(), 0.1);  // masks
    for (const loss::PositivePairs* pairs : {&discrete, &mixed}) {
        const loss::Positives<gcl::cpu> positives = pairs->positives();
        INFO("by keys " << positives.by_keys());
        const loss::Positives<gcl::cuda> positives_dev = loss::positives_on<gcl::cuda>(positives);
        for (bool normalize : {true, false}) {
            INFO("normalize " << normalize);
            const loss::ContrastOptions o{.temperature = 0.1, .normalize = normalize, .keep_pair_grads = true};
            const loss::ContrastResult<T> r = loss::supcon<T>(z.cview(), positives, o);
            const loss::ContrastResult<T, gcl::cuda> r_dev = loss::supcon<T, gcl::cuda>(z_dev.cview(), positives_dev, o);
            check_contrast_close(r, r_dev);

            // Backward through modified pair gradients (GradFilter's mask).
            Tensor<std::uint8_t> keep(Shape{A, A});
            for (index_t e = 0; e < A * A; ++e) keep.data()[e] = (e * 7) % 3 != 0;
            const Tensor<T> masked = loss::masked_pair_grads<T>(r, keep.cview());
            const Tensor<T, gcl::cuda> masked_dev = loss::masked_pair_grads<T, gcl::cuda>(r_dev, gcl::to_device(keep).cview());
            check_close(masked, gcl::to_host(masked_dev), loss_tolerance<T>());
            check_close(loss::contrast_backward<T>(r, masked.cview()),
                        gcl::to_host(loss::contrast_backward<T, gcl::cuda>(r_dev, masked_dev.cview())),
                        loss_tolerance<T>());
        }
    }
    // Without keeping the pair gradients.
    const loss::ContrastResult<T> plain = loss::supcon<T>(z.cview(), discrete.positives(), {.normalize = true});
    check_contrast_close(plain, loss::supcon<T, gcl::cuda>(z_dev.cview(), loss::positives_on<gcl::cuda>(discrete.positives()),
                                                           {.normalize = true}));
    // The host descriptions, moved to the device by the loss: PositivePairs, and labels [K x N].
    check_contrast_close(plain, loss::supcon<T, gcl::cuda>(z_dev.cview(), discrete, {.normalize = true}));
    Tensor<index_t> labels(Shape{2, A});
    for (index_t i = 0; i < A; ++i) {
        labels(0, i) = patient(i % B);
        labels(1, i) = (i % B) % 3;
    }
    check_contrast_close(loss::supcon<T>(z.cview(), labels.cview(), {.normalize = true}),
                         loss::supcon<T, gcl::cuda>(z_dev.cview(), gcl::to_device(labels).cview(), {.normalize = true}));

    // Errors name the same embedding or pair on both devices.
    Tensor<T> zero = z;
    for (index_t c = 0; c < 8; ++c) zero(4, c) = T(0);
    const loss::ContrastOptions normalized{.normalize = true};
    const std::string zero_cpu = error_of([&] { loss::supcon<T>(zero.cview(), discrete.positives(), normalized); });
    CHECK_THAT(zero_cpu, Catch::Contains("embedding 4 is zero"));
    CHECK(error_of([&] {
              loss::supcon<T, gcl::cuda>(gcl::to_device(zero).cview(), loss::positives_on<gcl::cuda>(discrete.positives()),
                                         normalized);
          }) == zero_cpu);
    Tensor<T> huge(z.shape());  // zero but for row 2, whose squared norm overflows T
    for (index_t c = 0; c < 8; ++c) huge(2, c) = std::numeric_limits<T>::max() / T(4);
    const std::string huge_cpu = error_of([&] { loss::supcon<T>(huge.cview(), discrete.positives()); });
    CHECK_THAT(huge_cpu, Catch::Contains("the similarity of embeddings 2 and 2"));
    CHECK(error_of([&] {
              loss::supcon<T, gcl::cuda>(gcl::to_device(huge).cview(), loss::positives_on<gcl::cuda>(discrete.positives()));
          }) == huge_cpu);
}

TEMPLATE_TEST_CASE("pixel contrast on cuda equals the CPU: forward, backward, gather and scatter",
                   "[cuda][loss][pixel]", float, double) {
    using T = TestType;
    gcl::Rng rng(54);
    const index_t N = 4, C = 6, H = 5, W = 7, S = 6;
    const Tensor<T> features = gcl::testing::random_tensor<T>(Shape{N, C, H, W}, rng);
    const Tensor<index_t> loc = loss::sample_locations(H, W, S, rng);
    const auto features_dev = gcl::to_device(features);
    const auto loc_dev = gcl::to_device(loc);
    const Tensor<index_t> image_of = Tensor<index_t>::from(Shape{N}, {0, 1, 0, 1});
    const Tensor<index_t> site = Tensor<index_t>::from(Shape{2}, {3, 3});
    const Tensor<double> position = Tensor<double>::from(Shape{2}, {0.2, 0.25});
    loss::PositivePairs discrete(image_of.cview(), 2), mixed(image_of.cview(), 2);
    discrete.add_labels(site.cview()).add_bins<double>(position.cview(), 4);
    mixed.add_labels(site.cview()).add_threshold<double>(position.cview(), 0.01);

    // gather_pixels and scatter_pixel_grads are copies and ordered additions: the CPU's bits.
    const Tensor<T> rows = loss::gather_pixels<T>(features.cview(), loc.cview());
    check_bitwise(rows, gcl::to_host(loss::gather_pixels<T, gcl::cuda>(features_dev.cview(), loc_dev.cview())));
    const Tensor<T> row_grads = gcl::testing::random_tensor<T>(rows.shape(), rng);
    Tensor<T> map = features;
    Tensor<T, gcl::cuda> map_dev = features_dev;
    loss::scatter_pixel_grads<T>(row_grads.cview(), loc.cview(), map.view());
    loss::scatter_pixel_grads<T, gcl::cuda>(gcl::to_device(row_grads).cview(), loc_dev.cview(), map_dev.view());
    check_bitwise(map, gcl::to_host(map_dev));

    for (const loss::PositivePairs* pairs : {&discrete, &mixed}) {
        const loss::Positives<gcl::cpu> positives = pairs->pixel_positives(S);
        INFO("by keys " << positives.by_keys());
        const loss::ContrastOptions o{.temperature = 0.2, .normalize = true, .keep_pair_grads = true};
        const loss::ContrastResult<T> r = loss::pixel_contrast<T>(features.cview(), loc.cview(), positives, o);
        const loss::ContrastResult<T, gcl::cuda> r_dev = loss::pixel_contrast<T, gcl::cuda>(
            features_dev.cview(), loc_dev.cview(), loss::positives_on<gcl::cuda>(positives), o);
        check_contrast_close(r, r_dev);
        // The host description, moved to the device by the loss.
        check_contrast_close(r, loss::pixel_contrast<T, gcl::cuda>(features_dev.cview(), loc_dev.cview(), *pairs, o));

        // The feature-map gradient, and the magnitudes GradFilter ranks.
        Tensor<T> grad_map(features.shape());
        Tensor<T, gcl::cuda> grad_map_dev(features.shape());
        loss::scatter_pixel_grads<T>(r.grad_sum.cview(), loc.cview(), grad_map.view());
        loss::scatter_pixel_grads<T, gcl::cuda>(r_dev.grad_sum.cview(), loc_dev.cview(), grad_map_dev.view());
        check_close(grad_map, gcl::to_host(grad_map_dev), loss_tolerance<T>());
        // GradFilter's anchor weights from that map, and from the same map the CPU's norms.
        check_close(loss::location_magnitudes<T>(grad_map.cview(), loc.cview()),
                    gcl::to_host(loss::location_magnitudes<T, gcl::cuda>(grad_map_dev.cview(), loc_dev.cview())),
                    loss_tolerance<T>());
        check_close(loss::location_magnitudes<T>(grad_map.cview(), loc.cview()),
                    gcl::to_host(loss::location_magnitudes<T, gcl::cuda>(gcl::to_device(grad_map).cview(),
                                                                         loc_dev.cview())),
                    tolerance<T>());
        for (index_t label : {index_t{-1}, index_t{1}}) {
            check_close(loss::pair_grad_magnitudes<T>(r, label),
                        gcl::to_host(loss::pair_grad_magnitudes<T, gcl::cuda>(r_dev, label)), loss_tolerance<T>());
            // From the same pair gradients, the magnitudes are the CPU's bits.
            loss::ContrastResult<T, gcl::cuda> same;
            same.pair_grads = gcl::to_device(r.pair_grads);
            check_bitwise(loss::pair_grad_magnitudes<T>(r, label),
                          gcl::to_host(loss::pair_grad_magnitudes<T, gcl::cuda>(same, label)));
        }
        const index_t A = N * S;
        Tensor<std::uint8_t> keep(Shape{A, A});
        for (index_t e = 0; e < A * A; ++e) keep.data()[e] = e % 5 < 3;
        const Tensor<T> masked = loss::masked_pair_grads<T>(r, keep.cview());
        const Tensor<T, gcl::cuda> masked_dev = loss::masked_pair_grads<T, gcl::cuda>(r_dev, gcl::to_device(keep).cview());
        check_close(masked, gcl::to_host(masked_dev), loss_tolerance<T>());
        check_close(loss::contrast_backward<T>(r, masked.cview()),
                    gcl::to_host(loss::contrast_backward<T, gcl::cuda>(r_dev, masked_dev.cview())), loss_tolerance<T>());
    }

    // A location outside the map: the CPU's error on the GPU.
    const Tensor<index_t> bad = Tensor<index_t>::from(Shape{3}, {4, H * W, -1});
    const std::string bad_cpu = error_of([&] { loss::gather_pixels<T>(features.cview(), bad.cview()); });
    CHECK_THAT(bad_cpu, Catch::Contains("location 1 = 35"));
    CHECK(error_of([&] { loss::gather_pixels<T, gcl::cuda>(features_dev.cview(), gcl::to_device(bad).cview()); }) ==
          bad_cpu);
}
