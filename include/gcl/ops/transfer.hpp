#pragma once
// Host <-> device copies for device-generic code: the small result of a step that runs on the
// host (sampled locations, positives built from meta labels) moved to the device the rest of
// the computation runs on, and small device values (meta labels) read on the host.
//
//   Tensor<index_t, D> loc = ops::host_to_device<D>(loss::sample_locations(h, w, S, rng));
//   Tensor<std::int64_t> meta_host = ops::device_to_host(meta);   // [K, N], any device
//
// On the cpu both are plain host operations: host_to_device moves its argument (no copy) and
// device_to_host makes a contiguous copy. On cuda they call gcl::to_device / gcl::to_host
// (backend/cuda/device.cuh, found when the translation unit includes gcl/cuda.cuh), which copy
// on the current stream (core/stream.hpp), in order with the device's kernels, and return once
// the host side may be used.
#include <concepts>
#include <type_traits>

#include "gcl/core/tensor.hpp"
#include "gcl/ops/elementwise.hpp"

namespace gcl::ops {

// `host` on device D (moved, not copied, when D is the host).
template <class D, class T>
Tensor<T, D> host_to_device(Tensor<T, cpu> host) {
    if constexpr (std::same_as<D, cpu>) {
        return host;
    } else {
        return to_device(host.cview());  // unqualified: gcl::to_device by argument-dependent lookup
    }
}

// A contiguous host copy of a view on any device (strided views included).
template <class T, class D>
Tensor<std::remove_const_t<T>, cpu> device_to_host(TensorView<T, D> v) {
    using U = std::remove_const_t<T>;
    if constexpr (std::same_as<D, cpu>) {
        return Tensor<U>::copy_of(v);
    } else {
        if (v.is_contiguous()) return to_host(ConstView<U, D>(v));
        Tensor<U, D> packed(v.shape());
        copy(ConstView<U, D>(v), packed.view());
        return to_host(packed.cview());
    }
}

}  // namespace gcl::ops
