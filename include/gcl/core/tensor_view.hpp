#pragma once
// TensorView<T, Device>: a non-owning, strided window onto elements that live elsewhere
// (a Tensor, a parameter arena, a caller's array). T may be const for read-only views.
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "gcl/core/config.hpp"
#include "gcl/core/device.hpp"
#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"

namespace gcl {

using Strides = std::array<index_t, max_rank>;

template <class T, class Device = cpu>
class TensorView {
public:
    using value_type = std::remove_const_t<T>;
    using element_type = T;
    using device_type = Device;

    TensorView() = default;
    // A contiguous row-major view.
    TensorView(T* data, const Shape& shape)
        : data_(data), shape_(shape), strides_(shape.row_major_strides()) {}
    TensorView(T* data, const Shape& shape, const Strides& strides)
        : data_(data), shape_(shape), strides_(strides) {}
    // A mutable view converts to a read-only one.
    template <class U>
        requires(std::is_const_v<T> && std::is_same_v<std::remove_const_t<T>, U>)
    TensorView(const TensorView<U, Device>& other)
        : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

    GCL_HOST_DEVICE T* data() const { return data_; }
    const Shape& shape() const { return shape_; }
    const Strides& strides() const { return strides_; }
    index_t stride(int d) const { return strides_[d]; }
    int rank() const { return shape_.rank(); }
    index_t numel() const { return shape_.numel(); }
    index_t dim(int d) const { return shape_.dim(d); }
    bool empty() const { return numel() == 0; }

    bool is_contiguous() const {
        index_t expected = 1;
        for (int d = rank() - 1; d >= 0; --d) {
            if (shape_[d] != 1 && strides_[d] != expected) return false;
            expected *= shape_[d];
        }
        return true;
    }

    // Unchecked element access by multi-index. Host devices only: host code must not dereference
    // device memory (kernels take raw pointers and strides).
    template <class... Idx>
    T& operator()(Idx... idx) const
        requires std::is_same_v<Device, cpu>
    {
        index_t offset = 0;
        int d = 0;
        ((offset += static_cast<index_t>(idx) * strides_[d++]), ...);
        return data_[offset];
    }

    // Bounds-checked element access (host only).
    template <class... Idx>
    T& at(Idx... idx) const
        requires std::is_same_v<Device, cpu>
    {
        const index_t i[] = {static_cast<index_t>(idx)...};
        check(static_cast<int>(sizeof...(Idx)) == rank(), "TensorView::at", "got ", sizeof...(Idx),
              " indices for shape ", shape_);
        for (int d = 0; d < rank(); ++d)
            check(i[d] >= 0 && i[d] < shape_[d], "TensorView::at", "index ", i[d], " out of range in dimension ",
                  d, " of shape ", shape_);
        return (*this)(idx...);
    }

    // The same elements under another shape with the same number of elements (contiguous only).
    TensorView reshape(const Shape& shape) const {
        check(is_contiguous(), "TensorView::reshape", "view of shape ", shape_, " is not contiguous");
        check(shape.numel() == numel(), "TensorView::reshape", "cannot reshape ", shape_, " (", numel(),
              " elements) to ", shape, " (", shape.numel(), " elements)");
        return TensorView(data_, shape);
    }
    // One-dimensional view of all elements (contiguous only).
    TensorView flat() const { return reshape(Shape{numel()}); }

    // Elements [start, start + length) along dimension d.
    TensorView narrow(int d, index_t start, index_t length) const {
        check(d >= 0 && d < rank(), "TensorView::narrow", "dimension ", d, " out of range for shape ", shape_);
        check(start >= 0 && length >= 0 && start + length <= shape_[d], "TensorView::narrow", "range [", start,
              ", ", start + length, ") out of bounds for dimension ", d, " of shape ", shape_);
        Shape s = shape_;
        s[d] = length;
        return TensorView(data_ + start * strides_[d], s, strides_);
    }

    // Fixes dimension d at index i; the result has one dimension less.
    TensorView select(int d, index_t i) const {
        check(d >= 0 && d < rank(), "TensorView::select", "dimension ", d, " out of range for shape ", shape_);
        check(i >= 0 && i < shape_[d], "TensorView::select", "index ", i, " out of range for dimension ", d,
              " of shape ", shape_);
        Shape s;
        Strides st{};
        int k = 0;
        for (int j = 0; j < rank(); ++j) {
            if (j == d) continue;
            s.push_back(shape_[j]);
            st[k++] = strides_[j];
        }
        return TensorView(data_ + i * strides_[d], s, st);
    }

    // Swaps two dimensions (no data moves; the result is usually not contiguous).
    TensorView transpose(int d0, int d1) const {
        check(d0 >= 0 && d0 < rank() && d1 >= 0 && d1 < rank(), "TensorView::transpose", "dimensions ", d0, ", ",
              d1, " out of range for shape ", shape_);
        Shape s = shape_;
        Strides st = strides_;
        std::swap(s[d0], s[d1]);
        std::swap(st[d0], st[d1]);
        return TensorView(data_, s, st);
    }

private:
    T* data_ = nullptr;
    Shape shape_;
    Strides strides_{};
};

template <class T, class Device = cpu>
using ConstView = TensorView<const T, Device>;

// The address range [first, last) a view's elements occupy (empty for an empty view); any device,
// only addresses are compared.
template <class T, class Device>
std::pair<std::uintptr_t, std::uintptr_t> address_range(const TensorView<T, Device>& v) {
    const auto base = reinterpret_cast<std::uintptr_t>(v.data());
    if (v.numel() == 0) return {base, base};
    index_t lo = 0, hi = 0;
    for (int d = 0; d < v.rank(); ++d) {
        const index_t span = (v.dim(d) - 1) * v.stride(d);
        (span < 0 ? lo : hi) += span;
    }
    const auto size = static_cast<index_t>(sizeof(std::remove_const_t<T>));
    return {base + static_cast<std::uintptr_t>(lo * size), base + static_cast<std::uintptr_t>((hi + 1) * size)};
}

// Whether the address ranges of two views intersect (empty views overlap nothing).
template <class A, class B, class Device>
bool views_overlap(const TensorView<A, Device>& a, const TensorView<B, Device>& b) {
    const auto [a0, a1] = address_range(a);
    const auto [b0, b1] = address_range(b);
    return a0 != a1 && b0 != b1 && a0 < b1 && b0 < a1;
}

}  // namespace gcl
