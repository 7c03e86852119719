#pragma once
// Tensor<T, Device>: owns a contiguous, row-major, zero-initialised buffer and its shape.
// Copying a Tensor copies its elements; views (TensorView) are what is passed around cheaply.
#include <algorithm>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "gcl/core/buffer.hpp"
#include "gcl/core/tensor_view.hpp"

namespace gcl {

template <class T, class Device = cpu>
class Tensor {
    static_assert(!std::is_const_v<T>, "gcl::Tensor owns mutable elements; use TensorView<const T> for read-only");

public:
    using value_type = T;
    using device_type = Device;
    using view_type = TensorView<T, Device>;
    using const_view_type = TensorView<const T, Device>;

    // An empty tensor of shape [0] (a rank-0 shape would mean one scalar element).
    Tensor() : shape_{0} {}
    explicit Tensor(const Shape& shape) : shape_(shape), buffer_(static_cast<std::size_t>(shape.numel())) {}
    Tensor(std::initializer_list<index_t> extents) : Tensor(Shape(extents)) {}
    // A host tensor filled with `value`.
    Tensor(const Shape& shape, T value)
        requires std::is_same_v<Device, cpu>
        : Tensor(shape) {
        fill(value);
    }
    // A host tensor from row-major values; their number must match the shape.
    static Tensor from(const Shape& shape, const std::vector<T>& values)
        requires std::is_same_v<Device, cpu>
    {
        check(static_cast<index_t>(values.size()) == shape.numel(), "Tensor::from", "shape ", shape, " needs ",
              shape.numel(), " values, got ", values.size());
        Tensor t(shape);
        std::copy(values.begin(), values.end(), t.data());
        return t;
    }
    // A contiguous host copy of any (possibly strided) host view.
    static Tensor copy_of(TensorView<const T, cpu> v)
        requires std::is_same_v<Device, cpu>
    {
        Tensor t(v.shape());
        T* out = t.data();
        const Shape& s = v.shape();
        index_t idx[max_rank] = {};
        const index_t n = v.numel();
        for (index_t k = 0; k < n; ++k) {
            index_t off = 0;
            for (int d = 0; d < s.rank(); ++d) off += idx[d] * v.stride(d);
            out[k] = v.data()[off];
            for (int d = s.rank() - 1; d >= 0; --d) {
                if (++idx[d] < s[d]) break;
                idx[d] = 0;
            }
        }
        return t;
    }

    T* data() { return buffer_.data(); }
    const T* data() const { return buffer_.data(); }
    // The stream the tensor's memory belongs to (core/stream.hpp): the one current when the
    // memory was allocated, whose work may reuse it once the tensor lets it go.
    Stream<Device> stream() const { return buffer_.stream(); }
    const Shape& shape() const { return shape_; }
    int rank() const { return shape_.rank(); }
    index_t numel() const { return shape_.numel(); }
    index_t dim(int d) const { return shape_.dim(d); }
    bool empty() const { return numel() == 0; }

    view_type view() { return view_type(data(), shape_); }
    const_view_type view() const { return const_view_type(data(), shape_); }
    const_view_type cview() const { return const_view_type(data(), shape_); }
    operator view_type() { return view(); }
    operator const_view_type() const { return cview(); }

    // Changes the shape in place; the number of elements must not change.
    void reshape(const Shape& shape) {
        check(shape.numel() == numel(), "Tensor::reshape", "cannot reshape ", shape_, " (", numel(),
              " elements) to ", shape, " (", shape.numel(), " elements)");
        shape_ = shape;
    }
    // Gives the tensor a new shape; reallocates (zeroed) only when the element count changes.
    void resize(const Shape& shape) {
        if (shape.numel() != numel()) buffer_ = Buffer<T, Device>(static_cast<std::size_t>(shape.numel()));
        shape_ = shape;
    }

    void fill(T value)
        requires std::is_same_v<Device, cpu>
    {
        std::fill(data(), data() + numel(), value);
    }

    // Element access: host devices only (see TensorView::operator()).
    template <class... Idx>
    T& operator()(Idx... idx)
        requires std::is_same_v<Device, cpu>
    {
        return view()(idx...);
    }
    template <class... Idx>
    const T& operator()(Idx... idx) const
        requires std::is_same_v<Device, cpu>
    {
        return cview()(idx...);
    }
    template <class... Idx>
    T& at(Idx... idx)
        requires std::is_same_v<Device, cpu>
    {
        return view().at(idx...);
    }
    template <class... Idx>
    const T& at(Idx... idx) const
        requires std::is_same_v<Device, cpu>
    {
        return cview().at(idx...);
    }

private:
    Shape shape_;
    Buffer<T, Device> buffer_;
};

}  // namespace gcl
