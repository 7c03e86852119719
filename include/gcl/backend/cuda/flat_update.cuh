#pragma once
// backend::FlatUpdate<cuda>: an optimizer rule's update over flat vectors in device memory
// (optim/flat_optimizer.hpp). One grid-stride kernel per trainable run of equal options, with
// the rule's flags fixed at compile time around the rule's own GCL_HOST_DEVICE update_item (the
// function the CPU reference calls), so CPU and GPU run one definition of every update. Kernels
// run on the current stream; first_nonfinite waits for its result.
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/copy.cuh"
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/cuda/first_index.cuh"
#include "gcl/backend/detail/reduce_items.hpp"
#include "gcl/backend/kernels.hpp"
#include "gcl/core/config.hpp"
#include "gcl/core/device.hpp"

namespace gcl::cuda_detail {

// The rule's state pointers, by value in the kernel's arguments.
template <class T, int N>
struct StatePointers {
    T* p[N > 0 ? N : 1] = {};
};

// Element `begin + j` of one run: the item function the update kernels run for every j.
template <class Rule, class T, bool... Flags>
GCL_HOST_DEVICE inline void flat_update_item(const typename Rule::Constants& c, T* params, const T* grads,
                                             T* const* state, index_t begin, index_t j) {
    const index_t i = begin + j;
    Rule::template update_item<Flags...>(c, params[i], grads[i], state, i);
}

template <class Rule, class T, bool... Flags>
struct FlatUpdateItem {
    typename Rule::Constants c;
    T* params;
    const T* grads;
    StatePointers<T, Rule::max_states> state;
    index_t begin;
    GCL_DEVICE void operator()(index_t j) const {
        flat_update_item<Rule, T, Flags...>(c, params, grads, state.p, begin, j);
    }
};

using backend::detail::finite_value;  // one definition, shared with the reduction rules


}  // namespace gcl::cuda_detail

namespace gcl::backend {

template <>
struct FlatUpdate<cuda> {
    // One step of Rule over elements [0, n) of the flat device vectors (state: a host array of
    // device pointers); the trainable runs of `runs` are updated, the others left alone.
    template <class Rule, class T>
    static void step(const typename Rule::Constants& c, T* params, const T* grads, T* const* state, index_t /*n*/,
                     const std::vector<UpdateRun>& runs) {
        cuda_detail::StatePointers<T, Rule::max_states> pointers;
        for (int k = 0; k < Rule::max_states; ++k) pointers.p[k] = state[k];
        for (const UpdateRun& run : runs) {
            if (!run.trainable || run.end == run.begin) continue;
            Rule::with_options(c, run.weight_decay, [&](auto... flag) {
                using Item = cuda_detail::FlatUpdateItem<Rule, T, decltype(flag)::value...>;
                cuda_detail::for_each_item(run.end - run.begin, Item{c, params, grads, pointers, run.begin});
            });
        }
    }

    // Index of the first NaN or infinite element of g[0, n) (device memory), or -1.
    template <class T>
    static index_t first_nonfinite(const T* g, index_t n) {
        return cuda_detail::first_index_where(n, cuda_detail::NonfiniteAt<T>{g});
    }

    // Element i of g (device memory), copied to the host.
    template <class T>
    static T element(const T* g, index_t i) {
        T value{};
        cuda_detail::copy_to_host(&value, g + i, sizeof(T));
        return value;
    }
};

}  // namespace gcl::backend
