// Gradient surgery on a small conflicting case: GradMitigator combines per-meta-label gradients
// with PCGrad semantics, GradFilter keeps the pixel pairs with the largest gradients.
//
//   ./gradient_surgery
#include <cstdio>

#include "gcl/gcl.hpp"

namespace {
double dot(const float* a, const float* b, gcl::index_t n) {
    double s = 0;
    for (gcl::index_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
    return s;
}
}  // namespace

int main() {
    using gcl::Shape;
    using gcl::Tensor;

    // Three meta labels' gradients over P = 4 parameters. "patient" and "position" disagree: the
    // same two slices are positives under one and negatives under the other.
    const gcl::index_t K = 3, P = 4;
    const Tensor<float> grads = Tensor<float>::from(Shape{K, P}, {
                                                                     1.0f, 0.5f, 0.0f, 0.2f,    // patient
                                                                     -0.8f, 0.4f, 0.3f, 0.0f,   // position
                                                                     0.1f, 0.2f, 0.9f, -0.1f,   // phase
                                                                 });
    Tensor<float> combined(Shape{P});
    gcl::surgery::GradMitigator<float> mitigator({.reduction = gcl::surgery::Reduction::sum, .seed = 42});
    const gcl::surgery::MitigateReport report = mitigator({.grads = grads.cview(), .out = combined.view(), .step = 0});

    std::printf("Gram matrix G G^T:\n");
    for (gcl::index_t i = 0; i < K; ++i)
        std::printf("  % .3f % .3f % .3f\n", report.gram(i, 0), report.gram(i, 1), report.gram(i, 2));
    std::printf("conflicting pairs: %lld, projections applied: %lld\n", (long long)report.conflicting_pairs,
                (long long)report.projections);
    std::printf("weights w (combined = w^T G): %.4f %.4f %.4f\n", report.weights(0), report.weights(1),
                report.weights(2));
    std::printf("plain sum:          ");
    for (gcl::index_t p = 0; p < P; ++p) std::printf(" % .4f", grads(0, p) + grads(1, p) + grads(2, p));
    std::printf("\nmitigated combined: ");
    for (gcl::index_t p = 0; p < P; ++p) std::printf(" % .4f", combined(p));
    std::printf("\ncombined . g_m per label:");
    for (gcl::index_t k = 0; k < K; ++k) std::printf(" % .4f", dot(combined.data(), grads.data() + k * P, P));
    std::printf("\n\n");

    // Representation level: the same, independently for each of N samples (N x K x D -> N x D).
    Tensor<float> per_sample(Shape{2, K, P});
    for (gcl::index_t n = 0; n < 2; ++n)
        for (gcl::index_t i = 0; i < K * P; ++i) per_sample.data()[n * K * P + i] = grads.data()[i] * float(n + 1);
    Tensor<float> per_sample_out(Shape{2, P});
    const auto batched = gcl::surgery::mitigate_batched<float>(per_sample.cview(), per_sample_out.view(), {.seed = 42});
    std::printf("batched: %lld projections over 2 samples; sample 1 = 2 x sample 0: %.4f vs %.4f\n\n",
                (long long)batched.projections, per_sample_out(1, 0), 2 * per_sample_out(0, 0));

    // GradFilter: 3 anchors x 5 candidate pairs of |dL/ds|; keep the 2 largest per anchor.
    const Tensor<float> magnitudes = Tensor<float>::from(Shape{3, 5}, {
                                                                          0.10f, 0.40f, 0.05f, 0.40f, 0.20f,
                                                                          0.90f, 0.01f, 0.02f, 0.03f, 0.50f,
                                                                          0.30f, 0.30f, 0.30f, 0.10f, 0.00f,
                                                                      });
    const gcl::surgery::FilterResult kept = gcl::surgery::filter_pairs<float>(
        magnitudes.cview(), {.rule = gcl::surgery::FilterRule::top_k_per_anchor, .k = 2});
    std::printf("GradFilter top-2 per anchor (ties: lower index first):\n");
    for (gcl::index_t a = 0; a < 3; ++a) {
        std::printf("  anchor %lld mask:", (long long)a);
        for (gcl::index_t m = 0; m < 5; ++m) std::printf(" %d", kept.mask(a, m));
        std::printf("\n");
    }
    const gcl::surgery::FilterResult global = gcl::surgery::filter_pairs<float>(
        magnitudes.cview(), {.rule = gcl::surgery::FilterRule::top_ratio_global, .ratio = 0.2});
    std::printf("top 20%% globally: %lld pairs, first (anchor %lld, column %lld)\n", (long long)global.indices.dim(0),
                (long long)global.indices(0, 0), (long long)global.indices(0, 1));
    return 0;
}
