#pragma once
// CPU batch normalisation on a tensor seen as [N, C, inner]; one channel per parallel task,
// statistics and gradient sums accumulated in double. The inner loops are `omp simd` (sums in
// vector lanes, added up in a fixed order: a run repeats exactly); benchmarks/check_vectorised.sh
// checks that they vectorise.
#include <cmath>
#include <vector>

#include "gcl/backend/cpu/parallel.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

template <>
struct BatchNorm<cpu> {
    // Normalises with the batch statistics of each channel and updates the running estimates:
    // running = (1 - momentum) running + momentum batch, with the unbiased variance.
    template <class T>
    static void forward_train(ConstView<T, cpu> x, ConstView<T, cpu> gamma, ConstView<T, cpu> beta,
                              TensorView<T, cpu> y, TensorView<T, cpu> running_mean, TensorView<T, cpu> running_var,
                              TensorView<T, cpu> saved_mean, TensorView<T, cpu> saved_invstd, index_t batch,
                              index_t channels, index_t inner, double momentum, double eps) {
        forward_train(x, gamma, beta, y, running_mean, running_var, saved_mean, saved_invstd, batch, channels, inner,
                      momentum, eps, [](double*, index_t) {});
    }

    // The same with the per-channel sums passed through reduce(values, n) before they are used:
    // a reduce that sums them over the ranks of a data-parallel job gives synchronised batch norm
    // (the statistics of the concatenated batch). Called twice: [sum x per channel, count], then
    // [sum (x - mean)^2 per channel].
    template <class T, class Reduce>
    static void forward_train(ConstView<T, cpu> x, ConstView<T, cpu> gamma, ConstView<T, cpu> beta,
                              TensorView<T, cpu> y, TensorView<T, cpu> running_mean, TensorView<T, cpu> running_var,
                              TensorView<T, cpu> saved_mean, TensorView<T, cpu> saved_invstd, index_t batch,
                              index_t channels, index_t inner, double momentum, double eps, Reduce&& reduce) {
        const index_t local_count = batch * inner;
        const bool parallel = cpu_detail::worth_parallel(channels, local_count);
        std::vector<double> sums(static_cast<std::size_t>(channels + 1)), squares(static_cast<std::size_t>(channels));
        cpu_detail::parallel_for(channels, parallel, [&](index_t c) {
            double sum = 0;
            for (index_t n = 0; n < batch; ++n) {
                const T* xs = x.data() + (n * channels + c) * inner;
#pragma omp simd reduction(+ : sum)
                for (index_t i = 0; i < inner; ++i) sum += static_cast<double>(xs[i]);
            }
            sums[c] = sum;
        });
        sums[channels] = static_cast<double>(local_count);
        reduce(sums.data(), channels + 1);
        const double count = sums[channels];
        cpu_detail::parallel_for(channels, parallel, [&](index_t c) {
            const double mean = sums[c] / count;
            double sq = 0;
            for (index_t n = 0; n < batch; ++n) {
                const T* xs = x.data() + (n * channels + c) * inner;
#pragma omp simd reduction(+ : sq)
                for (index_t i = 0; i < inner; ++i) {
                    const double d = static_cast<double>(xs[i]) - mean;
                    sq += d * d;
                }
            }
            squares[c] = sq;
        });
        reduce(squares.data(), channels);
        cpu_detail::parallel_for(channels, parallel, [&](index_t c) {
            const double mean = sums[c] / count;
            const double var = squares[c] / count;
            const double invstd = 1.0 / std::sqrt(var + eps);
            const double scale = static_cast<double>(gamma.data()[c]) * invstd;
            const double shift = static_cast<double>(beta.data()[c]) - mean * scale;
            for (index_t n = 0; n < batch; ++n) {
                const T* xs = x.data() + (n * channels + c) * inner;
                T* ys = y.data() + (n * channels + c) * inner;
#pragma omp simd
                for (index_t i = 0; i < inner; ++i) ys[i] = static_cast<T>(static_cast<double>(xs[i]) * scale + shift);
            }
            const double unbiased = squares[c] / (count - 1);
            T& rm = running_mean.data()[c];
            T& rv = running_var.data()[c];
            rm = static_cast<T>((1 - momentum) * static_cast<double>(rm) + momentum * mean);
            rv = static_cast<T>((1 - momentum) * static_cast<double>(rv) + momentum * unbiased);
            saved_mean.data()[c] = static_cast<T>(mean);
            saved_invstd.data()[c] = static_cast<T>(invstd);
        });
    }

    // Normalises with the running estimates.
    template <class T>
    static void forward_eval(ConstView<T, cpu> x, ConstView<T, cpu> gamma, ConstView<T, cpu> beta,
                             ConstView<T, cpu> running_mean, ConstView<T, cpu> running_var, TensorView<T, cpu> y,
                             index_t batch, index_t channels, index_t inner, double eps) {
        cpu_detail::parallel_for(batch * channels, cpu_detail::worth_parallel(batch * channels, inner), [&](index_t nc) {
            const index_t c = nc % channels;
            const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var.data()[c]) + eps);
            const double scale = static_cast<double>(gamma.data()[c]) * invstd;
            const double shift = static_cast<double>(beta.data()[c]) - static_cast<double>(running_mean.data()[c]) * scale;
            const T* xs = x.data() + nc * inner;
            T* ys = y.data() + nc * inner;
#pragma omp simd
            for (index_t i = 0; i < inner; ++i) ys[i] = static_cast<T>(static_cast<double>(xs[i]) * scale + shift);
        });
    }

    // Gradient of forward_train through the batch statistics:
    //   dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)),  dgamma = sum dy xhat,  dbeta = sum dy.
    template <class T>
    static void backward_train(ConstView<T, cpu> dy, ConstView<T, cpu> x, ConstView<T, cpu> gamma,
                               ConstView<T, cpu> saved_mean, ConstView<T, cpu> saved_invstd, TensorView<T, cpu> dx,
                               TensorView<T, cpu> dgamma, TensorView<T, cpu> dbeta, index_t batch, index_t channels,
                               index_t inner, bool accumulate) {
        backward_train(dy, x, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta, batch, channels, inner, accumulate,
                       [](double*, index_t) {});
    }

    // The same with [sum dy per channel, sum dy xhat per channel, count] passed through
    // reduce(values, n) before dx uses them (synchronised batch norm). dgamma and dbeta get this
    // batch's own sums: the ranks' parameter gradients add up to the concatenated batch's.
    template <class T, class Reduce>
    static void backward_train(ConstView<T, cpu> dy, ConstView<T, cpu> x, ConstView<T, cpu> gamma,
                               ConstView<T, cpu> saved_mean, ConstView<T, cpu> saved_invstd, TensorView<T, cpu> dx,
                               TensorView<T, cpu> dgamma, TensorView<T, cpu> dbeta, index_t batch, index_t channels,
                               index_t inner, bool accumulate, Reduce&& reduce) {
        const index_t local_count = batch * inner;
        const bool parallel = cpu_detail::worth_parallel(channels, 3 * local_count);
        std::vector<double> sums(static_cast<std::size_t>(2 * channels + 1));  // [sum dy | sum dy xhat | count]
        cpu_detail::parallel_for(channels, parallel, [&](index_t c) {
            const double mean = static_cast<double>(saved_mean.data()[c]);
            const double invstd = static_cast<double>(saved_invstd.data()[c]);
            double sum_dy = 0, sum_dy_xhat = 0;
            for (index_t n = 0; n < batch; ++n) {
                const T* g = dy.data() + (n * channels + c) * inner;
                const T* xs = x.data() + (n * channels + c) * inner;
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
                for (index_t i = 0; i < inner; ++i) {
                    const double gi = static_cast<double>(g[i]);
                    sum_dy += gi;
                    sum_dy_xhat += gi * (static_cast<double>(xs[i]) - mean);
                }
            }
            sum_dy_xhat *= invstd;
            sums[c] = sum_dy;
            sums[channels + c] = sum_dy_xhat;
            write(dgamma.data()[c], sum_dy_xhat, accumulate);
            write(dbeta.data()[c], sum_dy, accumulate);
        });
        sums[2 * channels] = static_cast<double>(local_count);
        reduce(sums.data(), 2 * channels + 1);
        const double count = sums[2 * channels];
        cpu_detail::parallel_for(channels, parallel, [&](index_t c) {
            const double mean = static_cast<double>(saved_mean.data()[c]);
            const double invstd = static_cast<double>(saved_invstd.data()[c]);
            const double mean_dy = sums[c] / count;
            const double mean_dy_xhat = sums[channels + c] / count;
            const double scale = static_cast<double>(gamma.data()[c]) * invstd;
            for (index_t n = 0; n < batch; ++n) {
                const T* g = dy.data() + (n * channels + c) * inner;
                const T* xs = x.data() + (n * channels + c) * inner;
                T* out = dx.data() + (n * channels + c) * inner;
#pragma omp simd
                for (index_t i = 0; i < inner; ++i) {
                    const double xhat = (static_cast<double>(xs[i]) - mean) * invstd;
                    out[i] = static_cast<T>(scale * (static_cast<double>(g[i]) - mean_dy - xhat * mean_dy_xhat));
                }
            }
        });
    }

    // Gradient of forward_eval (the running estimates are constants):
    //   dx = gamma invstd dy,  dgamma = sum dy xhat,  dbeta = sum dy.
    template <class T>
    static void backward_eval(ConstView<T, cpu> dy, ConstView<T, cpu> x, ConstView<T, cpu> gamma,
                              ConstView<T, cpu> running_mean, ConstView<T, cpu> running_var, TensorView<T, cpu> dx,
                              TensorView<T, cpu> dgamma, TensorView<T, cpu> dbeta, index_t batch, index_t channels,
                              index_t inner, double eps, bool accumulate) {
        const index_t count = batch * inner;
        cpu_detail::parallel_for(channels, cpu_detail::worth_parallel(channels, 2 * count), [&](index_t c) {
            const double mean = static_cast<double>(running_mean.data()[c]);
            const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var.data()[c]) + eps);
            const double scale = static_cast<double>(gamma.data()[c]) * invstd;
            double sum_dy = 0, sum_dy_xhat = 0;
            for (index_t n = 0; n < batch; ++n) {
                const T* g = dy.data() + (n * channels + c) * inner;
                const T* xs = x.data() + (n * channels + c) * inner;
                T* out = dx.data() + (n * channels + c) * inner;
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
                for (index_t i = 0; i < inner; ++i) {
                    const double gi = static_cast<double>(g[i]);
                    sum_dy += gi;
                    sum_dy_xhat += gi * (static_cast<double>(xs[i]) - mean);
                    out[i] = static_cast<T>(scale * gi);
                }
            }
            sum_dy_xhat *= invstd;
            write(dgamma.data()[c], sum_dy_xhat, accumulate);
            write(dbeta.data()[c], sum_dy, accumulate);
        });
    }

private:
    template <class T>
    static void write(T& out, double value, bool accumulate) {
        out = static_cast<T>(accumulate ? static_cast<double>(out) + value : value);
    }
};

}  // namespace gcl::backend
