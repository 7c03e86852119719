#include <catch2/catch.hpp>

#include "gcl/core/tensor.hpp"

using gcl::Shape;
using gcl::Tensor;

TEST_CASE("Shape: extents, numel, strides and printing", "[core]") {
    Shape s{2, 3, 4};
    CHECK(s.rank() == 3);
    CHECK(s.numel() == 24);
    CHECK(s.dim(-1) == 4);
    CHECK(s.str() == "[2, 3, 4]");
    const auto st = s.row_major_strides();
    CHECK(st[0] == 12);
    CHECK(st[1] == 4);
    CHECK(st[2] == 1);
    CHECK(Shape{2, 3} == Shape{2, 3});
    CHECK_FALSE(Shape{2, 3} == Shape{3, 2});
    CHECK_THROWS_AS((Shape{1, 2, 3, 4, 5, 6}), gcl::Error);
    CHECK_THROWS_AS((Shape{2, -1}), gcl::Error);
    CHECK_THROWS_AS(s.dim(3), gcl::Error);
}

TEST_CASE("check_same_shape names the operation and both shapes", "[core]") {
    try {
        gcl::check_same_shape("add", Shape{2, 3}, Shape{3, 2}, "lhs", "rhs");
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        const std::string what = e.what();
        CHECK(what.find("gcl::add") != std::string::npos);
        CHECK(what.find("[2, 3]") != std::string::npos);
        CHECK(what.find("[3, 2]") != std::string::npos);
        CHECK(e.op() == "add");
    }
}

TEMPLATE_TEST_CASE("Tensor owns zeroed, aligned, row-major memory", "[core]", float, double, int) {
    Tensor<TestType> t{2, 3, 5};
    CHECK(t.numel() == 30);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % gcl::host_alignment == 0);
    for (gcl::index_t i = 0; i < t.numel(); ++i) CHECK(t.data()[i] == TestType(0));
    t(1, 2, 3) = TestType(7);
    CHECK(t.data()[1 * 15 + 2 * 5 + 3] == TestType(7));
    CHECK(t.at(1, 2, 3) == TestType(7));
    CHECK_THROWS_AS(t.at(2, 0, 0), gcl::Error);
    CHECK_THROWS_AS(t.at(0, 0), gcl::Error);

    Tensor<TestType> copy = t;  // deep copy
    copy(0, 0, 0) = TestType(1);
    CHECK(t(0, 0, 0) == TestType(0));
    Tensor<TestType> moved = std::move(copy);
    CHECK(moved(0, 0, 0) == TestType(1));
    CHECK(moved(1, 2, 3) == TestType(7));

    t.reshape(Shape{6, 5});
    CHECK(t(5, 3) == TestType(7));
    CHECK_THROWS_AS(t.reshape(Shape{7, 5}), gcl::Error);
    t.resize(Shape{4});
    CHECK(t.numel() == 4);
}

TEST_CASE("Tensor::from checks the number of values", "[core]") {
    auto t = Tensor<float>::from(Shape{2, 2}, {1, 2, 3, 4});
    CHECK(t(1, 0) == 3.0f);
    CHECK_THROWS_AS(Tensor<float>::from(Shape{2, 2}, {1, 2, 3}), gcl::Error);
    Tensor<float> default_constructed;
    CHECK(default_constructed.empty());
    CHECK(default_constructed.numel() == 0);
    CHECK(Tensor<float>(Shape{}).numel() == 1);  // rank 0: one scalar
    Tensor<float> empty(Shape{0, 3});
    CHECK(empty.empty());
    CHECK(empty.data() == nullptr);
}

TEST_CASE("TensorView: narrow, select, transpose, reshape", "[core]") {
    Tensor<double> t(Shape{3, 4});
    for (gcl::index_t i = 0; i < 12; ++i) t.data()[i] = double(i);
    gcl::TensorView<double> v = t.view();

    auto rows = v.narrow(0, 1, 2);
    CHECK(rows.shape() == Shape{2, 4});
    CHECK(rows(0, 0) == 4.0);
    CHECK(rows.is_contiguous());

    auto cols = v.narrow(1, 1, 2);
    CHECK(cols.shape() == Shape{3, 2});
    CHECK(cols(2, 1) == 10.0);
    CHECK_FALSE(cols.is_contiguous());
    CHECK_THROWS_AS(cols.reshape(Shape{6}), gcl::Error);

    auto row2 = v.select(0, 2);
    CHECK(row2.shape() == Shape{4});
    CHECK(row2(3) == 11.0);
    auto col1 = v.select(1, 1);
    CHECK(col1(2) == 9.0);

    auto tr = v.transpose(0, 1);
    CHECK(tr.shape() == Shape{4, 3});
    CHECK(tr(3, 1) == 7.0);
    auto copied = Tensor<double>::copy_of(tr);
    CHECK(copied(3, 1) == 7.0);
    CHECK(copied.data()[1] == 4.0);

    gcl::ConstView<double> cv = v;  // mutable converts to const
    CHECK(cv.reshape(Shape{2, 6})(1, 0) == 6.0);
    CHECK_THROWS_AS(v.narrow(0, 2, 2), gcl::Error);
    CHECK_THROWS_AS(v.select(2, 0), gcl::Error);
    CHECK_THROWS_AS(v.reshape(Shape{5}), gcl::Error);
}

TEST_CASE("views_overlap compares the memory two views span", "[core]") {
    Tensor<float> t(Shape{4, 6});
    auto v = t.view();
    CHECK(gcl::views_overlap(v, v));
    CHECK_FALSE(gcl::views_overlap(v.narrow(0, 0, 2), v.narrow(0, 2, 2)));  // rows 0-1 vs 2-3
    CHECK(gcl::views_overlap(v.narrow(0, 0, 3), v.narrow(0, 2, 2)));
    // Column windows interleave in memory: their spans intersect even though no element is shared.
    CHECK(gcl::views_overlap(v.narrow(1, 0, 3), v.narrow(1, 3, 3)));
    CHECK_FALSE(gcl::views_overlap(v.narrow(0, 0, 0), v));  // empty views overlap nothing
    Tensor<float> other(Shape{4, 6});
    CHECK_FALSE(gcl::views_overlap(v, other.view()));
    const auto [first, last] = gcl::address_range(v.narrow(0, 1, 2));
    CHECK(last - first == 12 * sizeof(float));
    CHECK(first == reinterpret_cast<std::uintptr_t>(t.data() + 6));
}
