// io::AtomicFile: the destination changes only on commit, every failure names the path.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../data/temp_dir.hpp"
#include "support/errors.hpp"
#include "gcl/io/atomic_file.hpp"

namespace fs = std::filesystem;
using gcl::io::AtomicFile;
using gcl::io::write_file_atomic;

namespace {
std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("write_file_atomic creates and replaces a file and leaves no temporary", "[io]") {
    gcl_test::TempDir dir("io_replace");
    const fs::path path = dir / "report.md";
    write_file_atomic(path, std::string_view("first"), "write_report");
    CHECK(read_text(path) == "first");
    const std::vector<unsigned char> bytes = {'s', 'e', 'c', 0, 'd'};
    write_file_atomic(path, bytes, "write_report");
    CHECK(read_text(path) == std::string("sec\0d", 5));
    CHECK_FALSE(fs::exists(dir / "report.md.tmp"));
}

TEST_CASE("AtomicFile leaves the destination untouched until commit", "[io]") {
    gcl_test::TempDir dir("io_commit");
    const fs::path path = dir / "data.bin";
    write_file_atomic(path, std::string_view("old"), "test");
    {
        AtomicFile f(path, "test");
        f.write(std::string_view("new header, new body"));
        f.write_at(0, "NEW", 3);
        CHECK(read_text(path) == "old");
        CHECK(fs::exists(dir / "data.bin.tmp"));
    }  // not committed: the temporary goes, the old file stays
    CHECK(read_text(path) == "old");
    CHECK_FALSE(fs::exists(dir / "data.bin.tmp"));

    AtomicFile f(path, "test");
    f.write(std::string_view("new header, new body"));
    f.write_at(0, "NEW", 3);
    f.commit();
    CHECK(read_text(path) == "NEW header, new body");
    const std::string twice = gcl_test::error_of([&] { f.commit(); });
    CHECK(twice.find("gcl::test") == 0);
    CHECK(twice.find("already committed") != std::string::npos);
}

TEST_CASE("AtomicFile errors name the operation and the path", "[io]") {
    gcl_test::TempDir dir("io_errors");
    const std::string missing = gcl_test::error_of([&] { write_file_atomic(dir / "no" / "such" / "x.json", std::string_view("{}"), "write_config"); });
    CHECK(missing.find("gcl::write_config") == 0);
    CHECK(missing.find("x.json.tmp") != std::string::npos);
    CHECK(missing.find("No such file or directory") != std::string::npos);

    const std::string empty = gcl_test::error_of([&] { write_file_atomic("", std::string_view("{}"), "write_config"); });
    CHECK(empty.find("empty path") != std::string::npos);

    fs::create_directories(dir / "folder");
    const std::string folder = gcl_test::error_of([&] { write_file_atomic(dir / "folder" / "", std::string_view("x"), "write_config"); });
    CHECK(folder.find("names a folder") != std::string::npos);
}

TEST_CASE("a write that fails for lack of space keeps the previous file", "[io]") {
    gcl_test::TempDir dir("io_full");
    const fs::path path = dir / "model.bin";
    write_file_atomic(path, std::string_view("previous"), "test");

    // A file-size limit makes write() fail with EFBIG, as a full disk fails with ENOSPC.
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::signal(SIGXFSZ, SIG_IGN);
        rlimit limited{};
        ::getrlimit(RLIMIT_FSIZE, &limited);
        limited.rlim_cur = 4096;
        ::setrlimit(RLIMIT_FSIZE, &limited);
        const std::string big(1 << 20, 'x');
        int code = 10;
        try {
            write_file_atomic(path, big, "write_model");
        } catch (const gcl::Error& e) {
            const std::string what = e.what();
            code = what.find("gcl::write_model") == 0 && what.find("model.bin") != std::string::npos ? 0 : 11;
        }
        ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(read_text(path) == "previous");
    CHECK_FALSE(fs::exists(dir / "model.bin.tmp"));
}
