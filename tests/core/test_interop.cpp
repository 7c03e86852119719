#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "gcl/core/eigen.hpp"
#include "gcl/core/npy.hpp"
#include "gcl/core/xtensor.hpp"

namespace fs = std::filesystem;

TEST_CASE("Eigen maps share memory with tensors", "[core][interop]") {
    gcl::Tensor<float> t(gcl::Shape{2, 3});
    auto m = gcl::as_eigen(t.view());
    m(1, 2) = 5.0f;
    CHECK(t(1, 2) == 5.0f);
    CHECK(m.rows() == 2);
    CHECK(m.cols() == 3);

    // A column block of a row-major matrix keeps its row stride.
    gcl::Tensor<double> big(gcl::Shape{3, 4});
    for (int i = 0; i < 12; ++i) big.data()[i] = i;
    auto block = gcl::as_eigen(gcl::ConstView<double>(big.view().narrow(1, 1, 2)));
    CHECK(block(2, 1) == 10.0);
    CHECK_THROWS_AS(gcl::as_eigen(big.view().transpose(0, 1)), gcl::Error);
    CHECK_THROWS_AS(gcl::as_eigen(gcl::Tensor<float>(gcl::Shape{2, 2, 2}).view()), gcl::Error);

    auto v = gcl::as_eigen_vector(t.view());
    CHECK(v.size() == 6);
    CHECK(v(5) == 5.0f);
}

TEST_CASE("xtensor adapts tensors without copies, and tensors view xtensor containers", "[core][interop]") {
    gcl::Tensor<double> t(gcl::Shape{2, 3});
    auto x = gcl::as_xtensor(t.view());
    x(1, 1) = 4.0;
    CHECK(t(1, 1) == 4.0);
    CHECK(x.shape()[0] == 2);

    auto tr = gcl::as_xtensor(t.view().transpose(0, 1));
    CHECK(tr(1, 1) == 4.0);
    CHECK(tr.shape()[0] == 3);

    xt::xarray<float> a = xt::zeros<float>({2, 5});
    auto v = gcl::view_of(a);
    v(1, 4) = 3.0f;
    CHECK(a(1, 4) == 3.0f);
    CHECK(v.shape() == gcl::Shape{2, 5});
}

TEMPLATE_TEST_CASE("npy round trip", "[core][interop]", float, double, std::int32_t, std::uint8_t) {
    const fs::path path = fs::temp_directory_path() / "gcl_test_roundtrip.npy";
    gcl::Tensor<TestType> t(gcl::Shape{2, 3, 4});
    for (gcl::index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<TestType>(i * 3 % 17);
    gcl::save_npy(path, t);
    auto back = gcl::load_npy<TestType>(path);
    REQUIRE(back.shape() == t.shape());
    for (gcl::index_t i = 0; i < t.numel(); ++i) CHECK(back.data()[i] == t.data()[i]);

    // A strided view is written as its own contiguous array.
    gcl::save_npy<TestType>(path, gcl::ConstView<TestType>(t.view().transpose(1, 2)));
    auto tr = gcl::load_npy<TestType>(path);
    CHECK(tr.shape() == gcl::Shape{2, 4, 3});
    CHECK(tr(1, 3, 2) == t(1, 2, 3));
    fs::remove(path);
}

TEST_CASE("npy loading rejects bad files with gcl::Error", "[core][interop]") {
    const fs::path path = fs::temp_directory_path() / "gcl_test_bad.npy";
    gcl::Tensor<float> t(gcl::Shape{3, 5});
    gcl::save_npy(path, t);
    std::string good;
    {
        std::ifstream in(path, std::ios::binary);
        good.assign(std::istreambuf_iterator<char>(in), {});
    }
    CHECK_THROWS_WITH(gcl::load_npy<double>(path), Catch::Contains("<f4") && Catch::Contains("<f8"));
    CHECK_THROWS_AS(gcl::load_npy<float>(path.string() + ".missing"), gcl::Error);

    auto write = [&](const std::string& bytes) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    };
    // Every truncation fails cleanly.
    for (std::size_t len = 0; len < good.size(); ++len) {
        write(good.substr(0, len));
        CHECK_THROWS_AS(gcl::load_npy<float>(path), gcl::Error);
    }
    // Extra bytes are as wrong as missing ones.
    write(good + "xx");
    CHECK_THROWS_AS(gcl::load_npy<float>(path), gcl::Error);
    // Byte flips in the header either fail cleanly or still describe a valid array.
    const std::size_t header_end = good.size() - 15 * sizeof(float);
    for (std::size_t i = 0; i < header_end; ++i) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x5a);
        write(bad);
        try {
            auto loaded = gcl::load_npy<float>(path);
            CHECK(loaded.numel() * sizeof(float) == 15 * sizeof(float));
        } catch (const gcl::Error&) {
        }
    }
    fs::remove(path);
}
