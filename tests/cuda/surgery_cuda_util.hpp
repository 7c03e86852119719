#pragma once
// Shared by the CUDA surgery tests: bitwise comparison, a host Gram matrix, the tolerance
// measure of tests/surgery, and a non-blocking stream.
#include <cmath>
#include <cstring>

#include "gcl/cuda.cuh"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::testing {

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.numel())) == 0;
}

// Q = G G^T of a K x P host matrix, each entry one sequential sum in double.
template <class T>
Tensor<double> host_gram(const Tensor<T>& g) {
    const index_t K = g.dim(0), P = g.dim(1);
    Tensor<double> q(Shape{K, K});
    for (index_t i = 0; i < K; ++i)
        for (index_t j = 0; j < K; ++j) {
            double s = 0;
            for (index_t p = 0; p < P; ++p) s += static_cast<double>(g(i, p)) * static_cast<double>(g(j, p));
            q(i, j) = s;
        }
    return q;
}

// Largest |fast - ref| / (rtol * sum_k |w_k g_kp| + atol) over the columns p of a K x P matrix:
// at most 1 when every output is within rtol of the size of the terms that were added.
template <class T>
double worst_violation(const Tensor<T>& fast, const Tensor<T>& ref, const Tensor<T>& g, const Tensor<double>& weights,
                       double rtol, double atol) {
    const index_t K = g.dim(0), P = g.dim(1);
    double worst = 0;
    for (index_t p = 0; p < P; ++p) {
        double scale = 0;
        for (index_t k = 0; k < K; ++k) scale += std::abs(weights(k) * static_cast<double>(g(k, p)));
        const double err = std::abs(static_cast<double>(fast(p)) - static_cast<double>(ref(p)));
        worst = std::max(worst, err / (rtol * scale + atol));
    }
    return worst;
}

// A CUDA stream that does not synchronise with the default stream, destroyed with its scope.
class NonBlockingStream {
public:
    NonBlockingStream() { GCL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
    ~NonBlockingStream() { cudaStreamDestroy(stream_); }
    NonBlockingStream(const NonBlockingStream&) = delete;
    NonBlockingStream& operator=(const NonBlockingStream&) = delete;
    cudaStream_t get() const { return stream_; }

private:
    cudaStream_t stream_ = nullptr;
};

}  // namespace gcl::testing
