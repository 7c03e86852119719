#pragma once
// Build-wide configuration: version and the host/device function marker.

#define GCL_VERSION_MAJOR 0
#define GCL_VERSION_MINOR 1
#define GCL_VERSION_PATCH 0

// Functions marked GCL_HOST_DEVICE compile for the host under a plain C++ compiler and for both
// host and device under nvcc, so one definition (e.g. the counter-based RNG) serves both backends.
#if defined(__CUDACC__)
#define GCL_HOST_DEVICE __host__ __device__
#define GCL_DEVICE __device__
#else
#define GCL_HOST_DEVICE
#define GCL_DEVICE
#endif

namespace gcl {
inline constexpr int version_major = GCL_VERSION_MAJOR;
inline constexpr int version_minor = GCL_VERSION_MINOR;
inline constexpr int version_patch = GCL_VERSION_PATCH;
}  // namespace gcl
