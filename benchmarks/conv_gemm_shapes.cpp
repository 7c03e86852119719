// The products of the CPU convolution (im2col + GEMM) at the pre-training encoder's shapes, one
// image at a time on one thread, in Eigen (what gcl uses) and, when CMake found a CBLAS, in that
// BLAS: which of them is faster for these shapes.
//
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 ./build/benchmarks/conv_gemm_shapes [repeats]
//
// Prints one line per product: shape, Eigen GFLOP/s, BLAS GFLOP/s (or "-" without one).
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#if defined(GCL_BENCH_CBLAS)
#include <cblas.h>
#endif

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Product {
    const char* what;
    int m, n, k;     // C [m, n] = op(A) op(B), depth k
    bool a_t, b_t;   // A stored transposed (k x m) / B stored transposed (n x k)
};

template <class F>
double best_seconds(int repeats, F&& f) {
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        f();
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        best = std::min(best, took.count());
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::stoi(argv[1]) : 20;
    Eigen::setNbThreads(1);
    // Encoder of base width 16 at 64 x 64 (demo) and 128 x 128 (deep); 3x3 convolutions; K = 3.
    std::vector<Product> products;
    for (int size : {64, 128}) {
        for (int level = 0, c_in = 1, c = 16; level < 5 && (size >> level) >= 8; ++level, c_in = c, c *= 2) {
            const int hw = (size >> level) * (size >> level);
            for (int conv = 0; conv < 2; ++conv) {
                const int crs = (conv == 0 ? c_in : c) * 9;
                products.push_back({"forward      W x col", c, hw, crs, false, false});
                products.push_back({"weight grad  dY col^T", c, crs, hw, false, true});
                products.push_back({"data grad    W^T [dY_1..dY_3]", crs, 3 * hw, c, true, false});
            }
        }
    }
    std::printf("%-32s %6s %6s %6s %12s %12s\n", "product", "m", "n", "k", "Eigen GF/s", "BLAS GF/s");
    for (const Product& p : products) {
        Matrix A = Matrix::Random(p.a_t ? p.k : p.m, p.a_t ? p.m : p.k);
        Matrix B = Matrix::Random(p.b_t ? p.n : p.k, p.b_t ? p.k : p.n);
        Matrix C = Matrix::Zero(p.m, p.n);
        const double flops = 2.0 * p.m * p.n * p.k;
        const double eigen = best_seconds(repeats, [&] {
            if (p.a_t)
                C.noalias() = A.transpose() * B;
            else if (p.b_t)
                C.noalias() = A * B.transpose();
            else
                C.noalias() = A * B;
        });
        std::string blas = "-";
#if defined(GCL_BENCH_CBLAS)
        const double t = best_seconds(repeats, [&] {
            cblas_sgemm(CblasRowMajor, p.a_t ? CblasTrans : CblasNoTrans, p.b_t ? CblasTrans : CblasNoTrans, p.m, p.n, p.k,
                        1.0f, A.data(), static_cast<int>(A.cols()), B.data(), static_cast<int>(B.cols()), 0.0f, C.data(),
                        static_cast<int>(C.cols()));
        });
        blas = std::to_string(flops / t / 1e9).substr(0, 6);
#endif
        std::printf("%-32s %6d %6d %6d %12.1f %12s\n", p.what, p.m, p.n, p.k, flops / eigen / 1e9, blas.c_str());
    }
    return 0;
}
