#pragma once
// backend::FlatUpdate<cuda>: an optimizer rule's update over flat vectors in device memory
// (optim/flat_optimizer.hpp). One grid-stride kernel per trainable run of equal options, with
// the rule's flags fixed at compile time around the rule's own GCL_HOST_DEVICE update_item (the
// function the CPU reference calls), so CPU and GPU run one definition of every update. Kernels
// run on the default stream; first_nonfinite waits for its result.
#include <cmath>
#include <cstddef>
#include <map>
#include <vector>

#include <cuda_runtime.h>

#include "gcl/backend/cuda/buffer.cuh"
#include "gcl/backend/cuda/check.cuh"
#include "gcl/backend/cuda/elementwise.cuh"
#include "gcl/backend/cuda/handles.cuh"
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

// Whether x is neither NaN nor infinite, on the host and the device.
template <class T>
GCL_HOST_DEVICE inline bool finite_value(T x) {
#if defined(__CUDA_ARCH__)
    return isfinite(x);
#else
    return std::isfinite(x);
#endif
}

// first = min(first, i) where g[i] is not finite.
template <class T>
struct NonfiniteItem {
    const T* g;
    unsigned long long* first;
    GCL_DEVICE void operator()(index_t i) const {
        if (!finite_value(g[i])) atomicMin(first, static_cast<unsigned long long>(i));
    }
};

// One device word per host thread and device for first_nonfinite's result, allocated once.
inline unsigned long long* nonfinite_slot() {
    thread_local std::map<int, Buffer<unsigned long long, cuda>> slots;
    auto& slot = slots[current_device()];
    if (slot.size() == 0) slot = Buffer<unsigned long long, cuda>(1);
    return slot.data();
}

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
        if (n == 0) return -1;
        unsigned long long* first = cuda_detail::nonfinite_slot();
        GCL_CUDA_CHECK(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), nullptr));
        cuda_detail::for_each_item(n, cuda_detail::NonfiniteItem<T>{g, first});
        unsigned long long result = 0;
        GCL_CUDA_CHECK(cudaMemcpy(&result, first, sizeof(result), cudaMemcpyDeviceToHost));
        return result == ~0ull ? index_t{-1} : static_cast<index_t>(result);
    }

    // Element i of g (device memory), copied to the host.
    template <class T>
    static T element(const T* g, index_t i) {
        T value{};
        GCL_CUDA_CHECK(cudaMemcpy(&value, g + i, sizeof(T), cudaMemcpyDeviceToHost));
        return value;
    }
};

}  // namespace gcl::backend
