// Tensor basics: owning tensors and views, seeded random fills, Eigen and xtensor interop,
// and .npy files that NumPy reads.
//
//   ./tensor_basics [output.npy]
#include <cstdio>
#include <filesystem>

#include "gcl/gcl.hpp"

int main(int argc, char** argv) {
    const std::filesystem::path out = argc > 1 ? argv[1] : std::filesystem::temp_directory_path() / "gcl_basics.npy";

    // An owning 4 x 6 tensor, filled from a seeded counter-based generator.
    gcl::Tensor<float> x(gcl::Shape{4, 6});
    gcl::Rng rng(/*seed=*/7);
    gcl::fill_normal(x.view(), rng, 0.0f, 1.0f);

    // Views share memory: a window of columns, a transposed view.
    gcl::TensorView<float> middle = x.view().narrow(/*dim=*/1, /*start=*/2, /*length=*/3);
    middle(0, 0) = 100.0f;  // writes x(0, 2)
    std::printf("x%s, middle%s, x(0, 2) = %.1f\n", x.shape().str().c_str(), middle.shape().str().c_str(), x(0, 2));

    // Eigen sees the same elements without a copy.
    auto m = gcl::as_eigen(x.view());
    std::printf("row sums via Eigen: %.3f %.3f %.3f %.3f\n", m.row(0).sum(), m.row(1).sum(), m.row(2).sum(),
                m.row(3).sum());

    // Save for NumPy (np.load reads it), load it back, and check.
    gcl::save_npy(out, x);
    gcl::Tensor<float> back = gcl::load_npy<float>(out);
    std::printf("wrote %s, loaded %s back, equal: %s\n", out.string().c_str(), back.shape().str().c_str(),
                std::equal(x.data(), x.data() + x.numel(), back.data()) ? "yes" : "no");

    // Bad input gets a clear error.
    try {
        gcl::load_npy<double>(out);
    } catch (const gcl::Error& e) {
        std::printf("as expected: %s\n", e.what());
    }
    return 0;
}
