#pragma once
// Shape: up to five extents (N, C, D, H, W at most), with row-major strides.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>

#include "gcl/core/config.hpp"
#include "gcl/core/error.hpp"

namespace gcl {

using index_t = std::int64_t;
inline constexpr int max_rank = 5;

class Shape {
public:
    Shape() = default;
    Shape(std::initializer_list<index_t> extents) {
        check(extents.size() <= static_cast<std::size_t>(max_rank), "Shape",
              "rank ", extents.size(), " exceeds the maximum rank ", max_rank);
        for (index_t e : extents) push_back(e);
    }
    template <class It>
    Shape(It first, It last) {
        for (; first != last; ++first) push_back(static_cast<index_t>(*first));
    }

    int rank() const { return rank_; }
    index_t operator[](int d) const { return dims_[d]; }
    index_t& operator[](int d) { return dims_[d]; }
    // Extent of dimension d; negative d counts from the back (-1 is the last dimension).
    index_t dim(int d) const {
        const int k = d < 0 ? d + rank_ : d;
        if (k < 0 || k >= rank_) fail("Shape::dim", "dimension ", d, " out of range for shape ", *this);
        return dims_[k];
    }
    const index_t* begin() const { return dims_.data(); }
    const index_t* end() const { return dims_.data() + rank_; }

    index_t numel() const {
        index_t n = 1;
        for (int d = 0; d < rank_; ++d) n *= dims_[d];
        return n;
    }
    bool empty() const { return numel() == 0; }

    void push_back(index_t extent) {
        check(rank_ < max_rank, "Shape", "rank exceeds the maximum rank ", max_rank);
        check(extent >= 0, "Shape", "negative extent ", extent);
        dims_[rank_++] = extent;
    }

    // Row-major (C order) strides in elements.
    std::array<index_t, max_rank> row_major_strides() const {
        std::array<index_t, max_rank> s{};
        index_t acc = 1;
        for (int d = rank_ - 1; d >= 0; --d) {
            s[d] = acc;
            acc *= dims_[d];
        }
        return s;
    }

    friend bool operator==(const Shape& a, const Shape& b) {
        if (a.rank_ != b.rank_) return false;
        for (int d = 0; d < a.rank_; ++d)
            if (a.dims_[d] != b.dims_[d]) return false;
        return true;
    }

    std::string str() const {
        std::ostringstream out;
        out << '[';
        for (int d = 0; d < rank_; ++d) out << (d ? ", " : "") << dims_[d];
        out << ']';
        return out.str();
    }
    friend std::ostream& operator<<(std::ostream& out, const Shape& s) { return out << s.str(); }

private:
    std::array<index_t, max_rank> dims_{};
    int rank_ = 0;
};

// Throws gcl::Error naming `op` and both shapes unless they are equal.
inline void check_same_shape(std::string_view op, const Shape& a, const Shape& b,
                             std::string_view a_name = "a", std::string_view b_name = "b") {
    if (!(a == b)) fail(op, "shape mismatch: ", a_name, " is ", a, " but ", b_name, " is ", b);
}

// Throws gcl::Error unless `s` has rank `rank`.
inline void check_rank(std::string_view op, const Shape& s, int rank, std::string_view name = "input") {
    if (s.rank() != rank) fail(op, name, " must have rank ", rank, ", got shape ", s);
}

}  // namespace gcl
