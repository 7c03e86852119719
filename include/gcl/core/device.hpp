#pragma once
// Device tags. Every tensor, op and layer is a template over one of them; the CUDA backend's
// definitions live in backend/cuda and are only visible to nvcc translation units.
#include <concepts>
#include <string_view>

namespace gcl {

struct cpu {
    static constexpr std::string_view name = "cpu";
};
struct cuda {
    static constexpr std::string_view name = "cuda";
};

template <class D>
concept DeviceTag = std::same_as<D, cpu> || std::same_as<D, cuda>;

}  // namespace gcl
