#pragma once
// The device adapter the surgery test bodies (tests/surgery/*_cases.hpp) are written against:
// SurgeryDevice<D> copies host tensors to device D and back, names a stream other than the
// default one, and fills device memory with garbage. The cpu adapter is here; the cuda one is
// in tests/cuda/surgery_cuda_device.hpp. A body instantiated for a device other than the cpu
// also checks that device's results against the CPU kernels (CPU-vs-device parity).
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "gcl/core/device.hpp"
#include "gcl/core/stream.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/surgery/filter_options.hpp"

namespace gcl::testing {

template <class Device>
struct SurgeryDevice;

template <>
struct SurgeryDevice<cpu> {
    template <class T>
    static Tensor<T> upload(const Tensor<T>& host) {
        return host;
    }
    template <class T>
    static Tensor<T> download(const Tensor<T>& tensor) {
        return tensor;
    }
    static surgery::FilterResult download(const surgery::FilterResult& result) { return result; }

    // Work on the cpu runs in the calling thread: every stream is the default one.
    class SideStream {
    public:
        Stream<cpu> get() const { return {}; }
    };

    static void fill_bytes(void* data, int byte, std::size_t bytes) { std::memset(data, byte, bytes); }

    // Whether the K x P Gram pass sums every product in double (the CPU's float pass sums in float).
    template <class T>
    static constexpr bool gram_in_double = std::is_same_v<T, double>;
};

template <class Device>
inline constexpr bool is_cpu = std::is_same_v<Device, cpu>;

}  // namespace gcl::testing
