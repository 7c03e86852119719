#pragma once
// Scratch memory of the CPU kernels that persists between calls: each thread keeps a few slots
// per element type, each growing to the largest size asked of it and never shrinking or being
// zero-filled again, so a training step in its steady state allocates no scratch. Kernels that
// read scratch write it first (im2col fills every element of its columns).
#include <cstddef>

#include "gcl/core/buffer.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/shape.hpp"

namespace gcl::backend::cpu_detail {

// What a scratch slot holds; kernels that may be active at the same time on one thread use
// different slots.
enum class ScratchSlot : int { columns, partial_sums, gradient_columns, data_columns, count };

// At least `elements` elements of this thread's slot (contents unspecified), valid until the
// next call for the same slot and element type on this thread.
template <class T>
T* thread_scratch(index_t elements, ScratchSlot slot) {
    thread_local Buffer<T, cpu> slots[static_cast<int>(ScratchSlot::count)];
    Buffer<T, cpu>& b = slots[static_cast<int>(slot)];
    if (static_cast<std::size_t>(elements) > b.size()) b = Buffer<T, cpu>(static_cast<std::size_t>(elements));
    return b.data();
}

}  // namespace gcl::backend::cpu_detail
