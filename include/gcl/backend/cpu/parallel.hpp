#pragma once
// OpenMP loops of the CPU backend. Loops are parallel only where the work pays for the
// threads, and every result is computed in an order fixed by the data and the thread count, so
// a run repeats exactly.
//
// On a machine shared with other processes a thread of the team may be descheduled for a whole
// time slice. Loops whose iterations are independent therefore hand out their work dynamically
// in chunks (schedule(dynamic)): the threads that run take over the work of one that does not,
// and the region waits at most for the chunk that thread holds, not for its whole static share.
// Which thread computes an element never changes its value, so results stay exact; sums over
// several iterations (the convolution's weight gradient) use blocks fixed by the thread count,
// handed out the same way.
#include "gcl/core/shape.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace gcl::backend::cpu_detail {

// Below this many element operations a parallel loop costs more than it saves.
inline constexpr index_t parallel_grain = 32768;

// Elements per chunk of the dynamically scheduled element-wise loops (a multiple of every vector
// width; large enough that handing out a chunk costs nothing measurable).
inline constexpr index_t elementwise_chunk = 16384;

inline int max_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int thread_id() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Number of threads in the current parallel region (1 outside one).
inline int omp_team_size() {
#if defined(_OPENMP)
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// Whether a loop of `iterations`, each costing about `work_per_iteration` element operations,
// is worth running in parallel (and is not already inside a parallel region).
inline bool worth_parallel(index_t iterations, index_t work_per_iteration) {
#if defined(_OPENMP)
    return iterations > 1 && iterations * work_per_iteration >= parallel_grain && omp_get_max_threads() > 1 &&
           !omp_in_parallel();
#else
    (void)iterations;
    (void)work_per_iteration;
    return false;
#endif
}

// Calls body(i) for i in [0, n), in parallel when `parallel` is true; iterations are handed out
// one at a time (see the header comment), so body(i) must not depend on the thread that runs it.
template <class Body>
void parallel_for(index_t n, bool parallel, Body&& body) {
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (index_t i = 0; i < n; ++i) body(i);
}

// Calls body(first, stride) for every line along the middle dimension of a contiguous
// [outer, extent, inner] tensor: the line's elements are first + k * stride, k < extent.
template <class Body>
void for_each_line(index_t outer, index_t extent, index_t inner, Body&& body) {
    parallel_for(outer * inner, worth_parallel(outer * inner, extent), [&](index_t line) {
        const index_t o = line / inner, i = line % inner;
        body(o * extent * inner + i, inner);
    });
}

}  // namespace gcl::backend::cpu_detail
