#pragma once
// The layout of a strided copy, simplified once for every backend: dimensions that are
// contiguous with their successor in both views are merged and extents of one are dropped, so a
// narrowed channel block copies as a few long runs. Plain arrays, so a device kernel can take it
// by value.
#include "gcl/core/config.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl::backend {

struct CopyLayout {
    index_t extent[max_rank] = {};
    index_t in_stride[max_rank] = {};
    index_t out_stride[max_rank] = {};
    int rank = 0;  // 0: a single element (or none)
};

// The merged layout of a copy from `in` to `out` (views of equal shape).
template <class T, class Device>
CopyLayout copy_layout(const TensorView<const T, Device>& in, const TensorView<T, Device>& out) {
    CopyLayout l;
    for (int d = 0; d < in.rank(); ++d) {
        if (in.dim(d) == 1) continue;
        const int last = l.rank - 1;
        if (l.rank > 0 && l.in_stride[last] == in.stride(d) * in.dim(d) &&
            l.out_stride[last] == out.stride(d) * in.dim(d)) {
            l.extent[last] *= in.dim(d);
            l.in_stride[last] = in.stride(d);
            l.out_stride[last] = out.stride(d);
            continue;
        }
        l.extent[l.rank] = in.dim(d);
        l.in_stride[l.rank] = in.stride(d);
        l.out_stride[l.rank] = out.stride(d);
        ++l.rank;
    }
    return l;
}

// The offsets in `in` and `out` of element `i` (row-major over the merged extents).
GCL_HOST_DEVICE inline void copy_offsets(const CopyLayout& l, index_t i, index_t& in_offset, index_t& out_offset) {
    in_offset = 0;
    out_offset = 0;
    for (int d = l.rank - 1; d >= 0; --d) {
        const index_t k = i % l.extent[d];
        i /= l.extent[d];
        in_offset += k * l.in_stride[d];
        out_offset += k * l.out_stride[d];
    }
}

}  // namespace gcl::backend
