// io/zlib.hpp and io/read_file.hpp: gzip and zlib streams round-trip, CRC-32 has the standard
// value, and every failure names the caller's operation and file.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "../data/temp_dir.hpp"
#include "support/errors.hpp"
#include "gcl/io/read_file.hpp"
#include "gcl/io/zlib.hpp"

namespace io = gcl::io;

namespace {
std::vector<unsigned char> compressible_bytes(std::size_t n) {
    std::vector<unsigned char> v(n);
    std::uint32_t x = 12345;
    for (auto& b : v) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<unsigned char>((x >> 24) % 7);  // compressible, not constant
    }
    return v;
}
}  // namespace

TEST_CASE("crc32_update gives the standard CRC-32 and continues across pieces", "[io][zlib]") {
    const std::string check_string = "123456789";
    CHECK(io::crc32_update(0, check_string.data(), check_string.size()) == 0xCBF43926u);
    const std::uint32_t first = io::crc32_update(0, check_string.data(), 4);
    CHECK(io::crc32_update(first, check_string.data() + 4, 5) == 0xCBF43926u);
    CHECK(io::crc32_update(0, nullptr, 0) == 0u);
}

TEST_CASE("gzip_bytes round-trips through GzipReader, also as concatenated members", "[io][zlib]") {
    const std::vector<unsigned char> data = compressible_bytes(200000);
    const std::vector<unsigned char> gz = io::gzip_bytes(data, "test");
    REQUIRE(io::is_gzip(gz));
    CHECK(gz.size() < data.size());
    {
        io::GzipReader reader(gz, "test", "a.gz");
        std::vector<unsigned char> out;
        reader.read(out, 1000);
        reader.read(out, data.size() - 1000);
        reader.finish();
        CHECK(out == data);
    }
    // Two members, as `cat a.gz b.gz` makes.
    std::vector<unsigned char> two = io::gzip_bytes(std::span(data).first(5000), "test");
    const std::vector<unsigned char> rest = io::gzip_bytes(std::span(data).subspan(5000), "test");
    two.insert(two.end(), rest.begin(), rest.end());
    io::GzipReader reader(two, "test", "two.gz");
    std::vector<unsigned char> out;
    reader.read(out, data.size());
    reader.finish();
    CHECK(out == data);
    CHECK(io::gzip_bytes({}, "test").size() > 0);  // an empty member is still a valid stream
}

TEST_CASE("GzipReader errors name the operation and the file", "[io][zlib]") {
    const std::vector<unsigned char> data = compressible_bytes(5000);
    std::vector<unsigned char> gz = io::gzip_bytes(data, "test");
    SECTION("more bytes asked than the stream holds") {
        io::GzipReader reader(gz, "read_thing", "short.gz");
        std::vector<unsigned char> out;
        const std::string e = gcl_test::error_of([&] { reader.read(out, data.size() + 1); });
        CHECK_THAT(e, Catch::Contains("read_thing") && Catch::Contains("short.gz") && Catch::Contains("truncated"));
    }
    SECTION("a stream cut before its checksum") {
        gz.resize(gz.size() - 6);
        io::GzipReader reader(gz, "read_thing", "cut.gz");
        std::vector<unsigned char> out;
        const std::string e = gcl_test::error_of([&] {
            reader.read(out, 100);
            reader.finish();
        });
        CHECK_THAT(e, Catch::Contains("read_thing") && Catch::Contains("cut.gz") && Catch::Contains("truncated"));
    }
    SECTION("a corrupted checksum") {
        gz[gz.size() - 5] ^= 0xff;  // inside the CRC-32 trailer
        io::GzipReader reader(gz, "read_thing", "bad.gz");
        std::vector<unsigned char> out;
        const std::string e = gcl_test::error_of([&] {
            reader.read(out, data.size());
            reader.finish();
        });
        CHECK_THAT(e, Catch::Contains("read_thing") && Catch::Contains("bad.gz") && Catch::Contains("corrupt"));
    }
}

TEST_CASE("zlib_bytes makes a zlib stream that zlib inflates back", "[io][zlib]") {
    const std::vector<unsigned char> data = compressible_bytes(70000);
    for (int level : {0, 1, 9}) {
        const std::vector<unsigned char> packed = io::zlib_bytes(data, "test", level);
        std::vector<unsigned char> back(data.size());
        uLongf size = static_cast<uLongf>(back.size());
        REQUIRE(uncompress(back.data(), &size, packed.data(), static_cast<uLong>(packed.size())) == Z_OK);
        CHECK(size == data.size());
        CHECK(back == data);
    }
    CHECK_THAT(gcl_test::error_of([&] { io::zlib_bytes(data, "write_thing", 10); }),
               Catch::Contains("write_thing") && Catch::Contains("level"));
}

TEST_CASE("read_file_bytes reads every byte and names a missing file", "[io]") {
    gcl_test::TempDir dir("read_file");
    const std::vector<unsigned char> data = compressible_bytes(12345);
    {
        std::ofstream out(dir.path() / "f.bin", std::ios::binary);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    }
    CHECK(io::read_file_bytes(dir.path() / "f.bin", "test") == data);
    const std::string e = gcl_test::error_of([&] { io::read_file_bytes(dir.path() / "missing.bin", "load_thing"); });
    CHECK_THAT(e, Catch::Contains("load_thing") && Catch::Contains("missing.bin"));
}
