// The checkpoint file format: round trips, byte layout, corruption, truncation, atomic writes.
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint_test_util.hpp"
#include "gcl/core/random.hpp"
#include "gcl/train/checkpoint.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::train::Checkpoint;
using gcl::train::CheckpointWriter;
using gcl::train::DType;
using namespace checkpoint_test;

namespace {

template <class T>
Tensor<T> iota(const Shape& shape, double start = 0) {
    Tensor<T> t(shape);
    for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(start + double(i) * 0.5);
    return t;
}

template <class T>
bool same(const Tensor<T>& a, const Tensor<T>& b) {
    if (!(a.shape() == b.shape())) return false;
    return a.numel() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * std::size_t(a.numel())) == 0;
}

// Tensors of every dtype and rank 0..5, including an empty one.
struct Sample {
    Tensor<float> weights = iota<float>(Shape{2, 3}, 1);
    Tensor<double> rank5 = iota<double>(Shape{1, 2, 1, 2, 3}, -4);
    Tensor<std::int64_t> counts = iota<std::int64_t>(Shape{4});
    Tensor<std::int32_t> labels = iota<std::int32_t>(Shape{2, 2, 2});
    Tensor<float> empty = Tensor<float>(Shape{0, 3});

    void add_to(CheckpointWriter& w) const {
        w.add("model/weights", weights);
        w.add("model/rank5", rank5.cview());
        w.add("counts", counts);
        w.add("labels", labels);
        w.add("empty", empty);
        w.add_scalar<std::int64_t>("step", 1234567890123LL);
        w.add_text("note", "hello");
    }
    void check_against(const Checkpoint& c) const {
        CHECK(c.size() == 7);
        CHECK(same(c.get<float>("model/weights"), weights));
        CHECK(same(c.get<double>("model/rank5"), rank5));
        CHECK(same(c.get<std::int64_t>("counts"), counts));
        CHECK(same(c.get<std::int32_t>("labels"), labels));
        CHECK(same(c.get<float>("empty"), empty));
        CHECK(c.scalar<std::int64_t>("step") == 1234567890123LL);
        CHECK(c.text("note") == "hello");
    }
};

std::vector<unsigned char> sample_bytes(const ScratchDir& dir) {
    CheckpointWriter w;
    Sample().add_to(w);
    w.write(dir / "sample.gclc");
    return read_bytes(dir / "sample.gclc");
}

// True when parsing `bytes` raises gcl::Error (and nothing else).
bool rejected(std::vector<unsigned char> bytes) {
    try {
        Checkpoint::from_bytes(std::move(bytes));
    } catch (const gcl::Error&) {
        return true;
    }
    return false;
}

std::string rejection(std::vector<unsigned char> bytes) {
    try {
        Checkpoint::from_bytes(std::move(bytes), "test.gclc");
    } catch (const gcl::Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("Checkpoint round trip of every dtype and rank", "[checkpoint]") {
    ScratchDir dir;
    const Sample sample;
    CheckpointWriter w;
    sample.add_to(w);
    CHECK(w.size() == 7);
    CHECK(w.contains("counts"));
    w.write(dir / "a.gclc");
    const Checkpoint c = Checkpoint::read(dir / "a.gclc");
    sample.check_against(c);

    const auto entries = c.entries();
    REQUIRE(entries.size() == 7);
    CHECK(entries[0].name == "model/weights");
    CHECK(entries[6].name == "note");
    CHECK(c.dtype("model/rank5") == DType::float64);
    CHECK(c.dtype("labels") == DType::int32);
    CHECK(c.dtype("note") == DType::uint8);
    CHECK(c.shape("model/rank5") == Shape{1, 2, 1, 2, 3});
    CHECK(c.shape("step") == Shape{});
    CHECK(c.contains("empty"));
    CHECK_FALSE(c.contains("missing"));

    // copy_to fills contiguous and strided destinations.
    Tensor<float> into(Shape{2, 3});
    c.copy_to<float>("model/weights", into.view());
    CHECK(same(into, sample.weights));
    Tensor<float> transposed(Shape{3, 2});
    c.copy_to<float>("model/weights", transposed.view().transpose(0, 1));
    CHECK(transposed(2, 1) == sample.weights(1, 2));

    // Non-contiguous views are written as their logical contents.
    CheckpointWriter t;
    t.add("t", sample.weights.cview().transpose(0, 1));
    t.write(dir / "t.gclc");
    const Tensor<float> back = Checkpoint::read(dir / "t.gclc").get<float>("t", Shape{3, 2});
    CHECK(back(2, 1) == sample.weights(1, 2));
    CHECK(back(0, 1) == sample.weights(1, 0));

    // add copies; add_view reads the memory when write() runs.
    Tensor<float> source = Tensor<float>::from(Shape{2}, {1, 2});
    CheckpointWriter views;
    views.add("copied", source);
    views.add_view("viewed", source.cview());
    Tensor<float> square = Tensor<float>::from(Shape{2, 2}, {1, 2, 3, 4});
    views.add_view("strided", square.cview().transpose(0, 1));  // not contiguous: copied
    source(0) = 9;
    square(0, 1) = 9;
    views.write(dir / "v.gclc");
    const Checkpoint v = Checkpoint::read(dir / "v.gclc");
    CHECK(v.get<float>("copied")(0) == 1);
    CHECK(v.get<float>("viewed")(0) == 9);
    CHECK(v.get<float>("strided")(1, 0) == 2);
    CHECK_THROWS_AS(views.add_view("viewed", source.cview()), gcl::Error);

    // add of a moved tensor takes it over (no copy): the writer holds it after the tensor's scope.
    CheckpointWriter taken;
    {
        Tensor<double> host = Tensor<double>::from(Shape{3}, {1.5, -2, 4});
        taken.add("taken", std::move(host));
        CHECK_THROWS_AS(taken.add("taken", Tensor<double>(Shape{1})), gcl::Error);
    }
    taken.write(dir / "taken.gclc");
    CHECK(same(Checkpoint::read(dir / "taken.gclc").get<double>("taken"), Tensor<double>::from(Shape{3}, {1.5, -2, 4})));

    // Writing again replaces the file.
    CheckpointWriter again;
    again.add_scalar<double>("only", 2.5);
    again.write(dir / "a.gclc");
    const Checkpoint c2 = Checkpoint::read(dir / "a.gclc");
    CHECK(c2.size() == 1);
    CHECK(c2.scalar<double>("only") == 2.5);
    CHECK_FALSE(std::filesystem::exists(dir / "a.gclc.tmp"));
}

TEST_CASE("Checkpoint byte layout is the documented one", "[checkpoint]") {
    ScratchDir dir;
    CheckpointWriter w;
    const Tensor<double> v = Tensor<double>::from(Shape{2, 1}, {1.5, -2.0});
    w.add("ab", v);
    w.write(dir / "l.gclc");
    const auto b = read_bytes(dir / "l.gclc");
    // header (40) + name length (4) + name (2) + dtype, rank, reserved (4) + 2 extents (16) + data size (8) + data (16)
    REQUIRE(b.size() == 40 + 4 + 2 + 4 + 16 + 8 + 16);
    const unsigned char magic[8] = {0x89, 'G', 'C', 'L', '\r', '\n', 0x1A, '\n'};
    CHECK(std::memcmp(b.data(), magic, 8) == 0);
    CHECK(get_le(b, 8, 4) == 1);                 // version
    CHECK(get_le(b, 12, 4) == 0);                // flags
    CHECK(get_le(b, 16, 8) == 1);                // entry count
    CHECK(get_le(b, 24, 8) == b.size() - 40);    // payload bytes
    CHECK(get_le(b, 32, 4) == crc32_of(b.data() + 40, b.size() - 40));
    CHECK(get_le(b, 36, 4) == crc32_of(b.data(), 36));
    CHECK(get_le(b, 40, 4) == 2);                // name length
    CHECK(b[44] == 'a');
    CHECK(b[45] == 'b');
    CHECK(b[46] == 2);                           // float64
    CHECK(b[47] == 2);                           // rank
    CHECK(get_le(b, 48, 2) == 0);                // reserved
    CHECK(get_le(b, 50, 8) == 2);
    CHECK(get_le(b, 58, 8) == 1);
    CHECK(get_le(b, 66, 8) == 16);               // data bytes
    double first = 0;
    std::memcpy(&first, b.data() + 74, 8);
    CHECK(first == 1.5);
}

TEST_CASE("CheckpointWriter and Checkpoint reject bad names, dtypes and shapes", "[checkpoint]") {
    ScratchDir dir;
    CheckpointWriter w;
    const Tensor<float> t(Shape{3});
    w.add("x", t);
    CHECK_THROWS_AS(w.add("x", t), gcl::Error);
    CHECK_THROWS_AS(w.add("", t), gcl::Error);
    CHECK_THROWS_AS(w.add(std::string(5000, 'n'), t), gcl::Error);
    CHECK_THROWS_AS(w.write(""), gcl::Error);
    CHECK_THROWS_AS(w.write(dir / "no" / "such" / "dir.gclc"), gcl::Error);
    w.write(dir / "x.gclc");

    const Checkpoint c = Checkpoint::read(dir / "x.gclc");
    try {
        c.get<float>("y");
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(contains(e.what(), "'y'"));
        CHECK(contains(e.what(), "x.gclc"));
    }
    try {
        c.get<double>("x");
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(contains(e.what(), "float32"));
        CHECK(contains(e.what(), "float64"));
    }
    try {
        c.get<float>("x", Shape{4});
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(contains(e.what(), "[3]"));
        CHECK(contains(e.what(), "[4]"));
    }
    Tensor<float> wrong(Shape{1, 3});
    CHECK_THROWS_AS(c.copy_to<float>("x", wrong.view()), gcl::Error);
    CHECK_THROWS_AS(c.scalar<float>("x"), gcl::Error);
    CHECK_THROWS_AS(c.text("x"), gcl::Error);
    CHECK_THROWS_AS(c.check_entry<float>("x", Shape{3, 1}), gcl::Error);
    CHECK_NOTHROW(c.check_entry<float>("x", Shape{3}));

    CHECK_THROWS_AS(Checkpoint::read(dir / "missing.gclc"), gcl::Error);
    CHECK_THROWS_AS(Checkpoint::read(dir.path()), gcl::Error);
    write_bytes(dir / "empty.gclc", {});
    CHECK_THROWS_AS(Checkpoint::read(dir / "empty.gclc"), gcl::Error);
}

TEST_CASE("A checkpoint truncated at any offset is rejected", "[checkpoint]") {
    ScratchDir dir;
    const auto bytes = sample_bytes(dir);
    REQUIRE(bytes.size() > 200);
    REQUIRE_FALSE(rejected(bytes));
    // Every offset: the whole header and the whole payload.
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        INFO("truncated to " << n << " of " << bytes.size() << " bytes");
        REQUIRE(rejected(std::vector<unsigned char>(bytes.begin(), bytes.begin() + std::ptrdiff_t(n))));
    }
    // And through files.
    for (std::size_t n : {std::size_t{0}, std::size_t{7}, std::size_t{39}, std::size_t{40}, bytes.size() / 2,
                          bytes.size() - 1}) {
        write_bytes(dir / "cut.gclc", std::vector<unsigned char>(bytes.begin(), bytes.begin() + std::ptrdiff_t(n)));
        INFO("file truncated to " << n);
        CHECK_THROWS_AS(Checkpoint::read(dir / "cut.gclc"), gcl::Error);
    }
    CHECK(contains(rejection(std::vector<unsigned char>(bytes.begin(), bytes.end() - 1)), "truncated"));
}

TEST_CASE("Random byte flips are detected", "[checkpoint]") {
    ScratchDir dir;
    const auto bytes = sample_bytes(dir);
    gcl::Rng rng(20240601);
    int detected = 0;
    const int trials = 4000;
    for (int trial = 0; trial < trials; ++trial) {
        auto corrupt = bytes;
        const int flips = 1 + int(rng.below(4));
        for (int f = 0; f < flips; ++f) {
            const std::size_t at = rng.below(corrupt.size());
            corrupt[at] ^= static_cast<unsigned char>(1 + rng.below(255));
        }
        if (corrupt == bytes) continue;  // two flips of one byte may cancel
        INFO("trial " << trial);
        REQUIRE(rejected(std::move(corrupt)));
        ++detected;
    }
    CHECK(detected > trials * 9 / 10);
    // Single bit flips anywhere, header and payload.
    for (std::size_t at = 0; at < bytes.size(); at += 3) {
        auto corrupt = bytes;
        corrupt[at] ^= static_cast<unsigned char>(1u << (at % 8));
        INFO("bit flip in byte " << at);
        REQUIRE(rejected(std::move(corrupt)));
    }
}

TEST_CASE("Foreign, future and malformed checkpoints are rejected with a reason", "[checkpoint]") {
    ScratchDir dir;
    const auto bytes = sample_bytes(dir);

    auto magic = bytes;
    magic[1] = 'X';
    CHECK(contains(rejection(magic), "bad magic"));
    CHECK(contains(rejection({'h', 'e', 'l', 'l', 'o'}), "too short"));

    auto future = bytes;
    set_le(future, 8, 4, 2);
    CHECK(contains(rejection(future), "version 2"));
    reseal(future);  // even with valid checksums
    CHECK(contains(rejection(future), "version 2"));
    auto zero = bytes;
    set_le(zero, 8, 4, 0);
    reseal(zero);
    CHECK(contains(rejection(zero), "version 0"));

    auto header = bytes;
    header[20] ^= 1;  // entry count, checksum not updated
    CHECK(contains(rejection(header), "header checksum"));
    auto payload = bytes;
    payload[bytes.size() - 1] ^= 1;
    CHECK(contains(rejection(payload), "payload checksum"));

    // Structural errors behind valid checksums.
    auto flags = bytes;
    set_le(flags, 12, 4, 1);
    reseal(flags);
    CHECK(contains(rejection(flags), "flags"));

    auto trailing = bytes;
    trailing.push_back(0);
    reseal(trailing);
    CHECK(contains(rejection(trailing), "unexpected bytes"));

    auto more_entries = bytes;
    set_le(more_entries, 16, 8, get_le(bytes, 16, 8) + 1);
    reseal(more_entries);
    CHECK(contains(rejection(more_entries), "truncated"));

    auto fewer_entries = bytes;
    set_le(fewer_entries, 16, 8, get_le(bytes, 16, 8) - 1);
    reseal(fewer_entries);
    CHECK(contains(rejection(fewer_entries), "unexpected bytes"));

    auto huge_count = bytes;
    set_le(huge_count, 16, 8, ~std::uint64_t{0});
    reseal(huge_count);
    CHECK(contains(rejection(huge_count), "entry count"));

    // The first entry starts at byte 40 with the name "model/weights" (13 bytes).
    REQUIRE(get_le(bytes, 40, 4) == 13);
    const std::size_t type_at = 40 + 4 + 13;
    auto no_name = bytes;
    set_le(no_name, 40, 4, 0);
    reseal(no_name);
    CHECK(contains(rejection(no_name), "name length"));

    auto long_name = bytes;
    set_le(long_name, 40, 4, 1u << 30);
    reseal(long_name);
    CHECK(contains(rejection(long_name), "name length"));

    auto dtype = bytes;
    dtype[type_at] = 9;
    reseal(dtype);
    CHECK(contains(rejection(dtype), "dtype"));

    auto rank = bytes;
    rank[type_at + 1] = 6;
    reseal(rank);
    CHECK(contains(rejection(rank), "rank 6"));

    auto reserved = bytes;
    reserved[type_at + 2] = 1;
    reseal(reserved);
    CHECK(contains(rejection(reserved), "reserved"));

    auto extent = bytes;
    set_le(extent, type_at + 4, 8, 3);  // shape [3, 3] but 6 floats of data
    reseal(extent);
    CHECK(contains(rejection(extent), "needs"));

    auto giant = bytes;
    set_le(giant, type_at + 4, 8, std::uint64_t{1} << 62);
    reseal(giant);
    CHECK(contains(rejection(giant), "implausible shape"));

    auto data_size = bytes;
    set_le(data_size, type_at + 4 + 16, 8, 1u << 20);
    reseal(data_size);
    CHECK(contains(rejection(data_size), "announces"));

    // Two entries of one name.
    CheckpointWriter w;
    const Tensor<float> t(Shape{1});
    w.add("a1", t);
    w.add("a2", t);
    w.write(dir / "dup.gclc");
    auto dup = read_bytes(dir / "dup.gclc");
    const std::size_t second_name = 40 + (4 + 2 + 4 + 8 + 8 + 4) + 4;
    REQUIRE(dup[second_name + 1] == '2');
    dup[second_name + 1] = '1';
    reseal(dup);
    CHECK(contains(rejection(dup), "duplicate"));
}

TEST_CASE("A write that fails midway leaves the previous checkpoint intact", "[checkpoint]") {
    ScratchDir dir;
    const auto path = dir / "model.gclc";
    CheckpointWriter first;
    const Sample sample;
    sample.add_to(first);
    first.write(path);
    const auto before = read_bytes(path);

    // The next checkpoint is larger than the file-size limit, so write() fails with EFBIG
    // after the first 4096 bytes.
    const Tensor<double> big = iota<double>(Shape{100000});
    CheckpointWriter second;
    second.add("big", big);
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = saved;
    limited.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
    std::string error;
    try {
        second.write(path);
    } catch (const gcl::Error& e) {
        error = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);

    CHECK(contains(error, "failed"));
    CHECK(read_bytes(path) == before);
    sample.check_against(Checkpoint::read(path));
    CHECK_FALSE(std::filesystem::exists(dir / "model.gclc.tmp"));

    // Without the limit the same write succeeds.
    second.write(path);
    CHECK(Checkpoint::read(path).get<double>("big", Shape{100000})(99999) == big(99999));
}

TEST_CASE("A process killed while writing leaves the previous checkpoint intact", "[checkpoint]") {
    ScratchDir dir;
    const auto path = dir / "model.gclc";
    CheckpointWriter first;
    const Sample sample;
    sample.add_to(first);
    first.write(path);
    const auto before = read_bytes(path);

    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Exceeding the file-size limit kills this process with SIGXFSZ in the middle of write().
        std::signal(SIGXFSZ, SIG_DFL);
        rlimit limited{};
        ::getrlimit(RLIMIT_FSIZE, &limited);
        limited.rlim_cur = 8192;
        ::setrlimit(RLIMIT_FSIZE, &limited);
        const Tensor<float> big = iota<float>(Shape{1 << 20});
        CheckpointWriter w;
        w.add("big", big);
        try {
            w.write(path);
        } catch (...) {
        }
        ::_exit(3);  // not reached when the signal kills the process
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGXFSZ);

    // The crash left a partial temporary file, never a partial checkpoint.
    CHECK(std::filesystem::exists(dir / "model.gclc.tmp"));
    CHECK(std::filesystem::file_size(dir / "model.gclc.tmp") == 8192);
    CHECK(read_bytes(path) == before);
    sample.check_against(Checkpoint::read(path));
    CHECK_THROWS_AS(Checkpoint::read(dir / "model.gclc.tmp"), gcl::Error);

    // The next save goes through and cleans up.
    CheckpointWriter next;
    next.add_scalar<std::int64_t>("step", 7);
    next.write(path);
    CHECK(Checkpoint::read(path).scalar<std::int64_t>("step") == 7);
    CHECK_FALSE(std::filesystem::exists(dir / "model.gclc.tmp"));
}
