#pragma once
// Conventions shared by every op in gcl::ops.
//
// - Inputs are read-only views, outputs are views the caller has allocated with the right shape
//   (each op has an output-shape function where the shape is not simply the input's).
// - T and Device are deduced from the output view; inputs are `Input<T, Device>`, so a Tensor, a
//   TensorView<T> or a ConstView<T> binds to them. Scalars are `Scalar<T>`: `scale(x, 0.5, y)`
//   works for float views.
// - Every mismatch throws gcl::Error whose message names the op and the shapes involved.
// - Ops that only read (sum, all_finite, ...) take any `ReadableTensor`.
#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/core/tensor.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/core/write_mode.hpp"

namespace gcl::ops {

// A read-only input argument; its T and Device come from the op's output view.
template <class T, class Device>
using Input = std::type_identity_t<ConstView<T, Device>>;

// A scalar argument of the op's element type (not used to deduce T).
template <class T>
using Scalar = std::type_identity_t<T>;

// Anything an op can read: a Tensor, a TensorView<T> or a ConstView<T>.
template <class X>
concept ReadableTensor = requires {
    typename X::value_type;
    typename X::device_type;
} && std::convertible_to<const X&, ConstView<typename X::value_type, typename X::device_type>>;

template <ReadableTensor X>
using ConstViewOf = ConstView<typename X::value_type, typename X::device_type>;


// Dimension `dim` of a rank-`rank` shape, with negative values counting from the back.
inline int resolve_dim(std::string_view op, const Shape& shape, int dim) {
    const int d = dim < 0 ? dim + shape.rank() : dim;
    if (d < 0 || d >= shape.rank()) fail(op, "dimension ", dim, " is out of range for shape ", shape);
    return d;
}

// A shape seen as [outer, extent, inner] around one dimension: the layout every "along a
// dimension" op works on (softmax, reductions, bias, batch norm's channels).
struct DimSplit {
    index_t outer = 1;
    index_t extent = 1;
    index_t inner = 1;
};

inline DimSplit split_at(const Shape& shape, int dim) {
    DimSplit s;
    for (int d = 0; d < dim; ++d) s.outer *= shape[d];
    s.extent = shape[dim];
    for (int d = dim + 1; d < shape.rank(); ++d) s.inner *= shape[d];
    return s;
}

// `shape` with dimension `dim` removed.
inline Shape remove_dim(const Shape& shape, int dim) {
    Shape out;
    for (int d = 0; d < shape.rank(); ++d)
        if (d != dim) out.push_back(shape[d]);
    return out;
}

template <class T, class Device>
void require_contiguous(std::string_view op, const TensorView<T, Device>& v, std::string_view name) {
    if (!v.is_contiguous()) fail(op, name, " of shape ", v.shape(), " must be contiguous");
}

// Throws unless the output's memory is disjoint from the input's (ops that read an input after
// writing part of the output would otherwise compute garbage).
template <class T, class U, class Device>
void require_disjoint(std::string_view op, const TensorView<T, Device>& out, const TensorView<U, Device>& in,
                      std::string_view out_name, std::string_view in_name) {
    if (views_overlap(out, in))
        fail(op, out_name, " of shape ", out.shape(), " overlaps ", in_name, " of shape ", in.shape(),
             "; this op cannot run in place");
}

// Throws unless the output is either disjoint from the input or exactly the same view (ops
// that go element by element may run in place).
template <class T, class U, class Device>
void require_disjoint_or_same(std::string_view op, const TensorView<T, Device>& out,
                              const TensorView<U, Device>& in, std::string_view out_name,
                              std::string_view in_name) {
    if (static_cast<const void*>(out.data()) == static_cast<const void*>(in.data()) && out.shape() == in.shape() &&
        out.strides() == in.strides())
        return;
    require_disjoint(op, out, in, out_name, in_name);
}

}  // namespace gcl::ops
