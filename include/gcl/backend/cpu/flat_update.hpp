#pragma once
// backend::FlatUpdate<cpu>: an optimizer rule's update over the flat parameter, gradient and
// state vectors (optim/flat_optimizer.hpp), in one fused pass: blocks of block_size elements are
// spread over OpenMP threads when the vectors are long, and each block runs the rule's
// vectorised update_range over the trainable runs it meets. Every element's update reads only
// element i, so the result does not depend on the blocking or the number of threads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gcl/backend/kernels.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend {

template <>
struct FlatUpdate<cpu> {
    static constexpr index_t block_size = 8192;
    static constexpr index_t parallel_threshold = 1 << 16;

    // One step of Rule over elements [0, n) of the flat vectors: the trainable runs of `runs`
    // (which cover [0, n) in order) are updated, the others left alone.
    template <class Rule, class T>
    static void step(const typename Rule::Constants& c, T* params, const T* grads, T* const* state, index_t n,
                     const std::vector<UpdateRun>& runs) {
        const index_t blocks = (n + block_size - 1) / block_size;
        // check_vectorised: rows (blocks of runs; the element loop is the rule's update_range)
#pragma omp parallel for schedule(static) if (n >= parallel_threshold)
        for (index_t b = 0; b < blocks; ++b) {
            const index_t begin = b * block_size;
            const index_t end = std::min(n, begin + block_size);
            auto run = std::upper_bound(runs.begin(), runs.end(), begin,
                                        [](index_t x, const UpdateRun& r) { return x < r.end; });
            for (; run != runs.end() && run->begin < end; ++run) {
                if (!run->trainable) continue;
                const index_t lo = std::max(begin, run->begin);
                const index_t hi = std::min(end, run->end);
                Rule::update_range(c, run->weight_decay, params, grads, state, lo, hi);
            }
        }
    }

    // Index of the first NaN or infinite element of g[0, n), or -1.
    template <class T>
    static index_t first_nonfinite(const T* g, index_t n) {
        // g * 0 is 0 for finite g and NaN otherwise, so one vectorisable sum says whether to look.
        T probe = 0;
#pragma omp parallel for reduction(+ : probe) schedule(static) if (n >= parallel_threshold)
        for (index_t i = 0; i < n; ++i) probe += g[i] * T(0);
        if (probe == T(0)) return -1;
        for (index_t i = 0; i < n; ++i)
            if (!std::isfinite(g[i])) return i;
        return -1;
    }

    // Element i of g, read on the host.
    template <class T>
    static T element(const T* g, index_t i) {
        return g[i];
    }
};

}  // namespace gcl::backend
