// Every writer of gcl on a full disk (ENOSPC from /dev/full), in a read-only folder and killed
// mid-write: a gcl::Error naming the operation and the path, the previous file untouched, no
// temporary file left behind.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "gcl/core/npy.hpp"
#include "gcl/data/acdc.hpp"
#include "gcl/data/nifti.hpp"
#include "gcl/data/png.hpp"
#include "gcl/io/atomic_file.hpp"
#include "gcl/train/checkpoint.hpp"
#include "../data/temp_dir.hpp"

using gcl::Shape;
using gcl::Tensor;
namespace fs = std::filesystem;
namespace gd = gcl::data;

namespace {
std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

struct Writer {
    std::string name;  // the operation the error must name
    std::string file;
    std::function<void(const fs::path&)> write;
};

std::vector<Writer> every_writer() {
    Tensor<float> volume(Shape{2, 3, 4});
    for (gcl::index_t i = 0; i < volume.numel(); ++i) volume.data()[i] = static_cast<float>(i);
    Tensor<std::uint8_t> image(Shape{4, 5});
    return {
        {"save_npy", "a.npy", [=](const fs::path& p) { gcl::save_npy<float>(p, volume.cview()); }},
        {"write_nifti", "a.nii", [=](const fs::path& p) { gd::write_nifti<float>(p, volume.cview()); }},
        {"write_nifti", "a.nii.gz", [=](const fs::path& p) { gd::write_nifti<float>(p, volume.cview()); }},
        {"write_png", "a.png", [=](const fs::path& p) { gd::write_png(p, image.cview()); }},
        {"write_acdc_info", "Info.cfg", [](const fs::path& p) {
             gd::AcdcInfo info;
             info.es = 9;
             gd::write_acdc_info(p, info);
         }},
        {"write_checkpoint", "a.gclc", [=](const fs::path& p) {
             gcl::train::CheckpointWriter w;
             w.add("volume", volume.cview());
             w.write(p);
         }},
        {"write_file_atomic", "a.txt", [](const fs::path& p) { gcl::io::write_file_atomic(p, "text", "write_file_atomic"); }},
    };
}

bool tmp_left(const fs::path& p) { return fs::exists(fs::symlink_status(fs::path(p.string() + ".tmp"))); }
}  // namespace

TEST_CASE("every writer on a full disk: an error naming it, the old file intact", "[robustness][io]") {
    if (!fs::exists("/dev/full")) {
        WARN("no /dev/full: the full-disk case is not run here");
        return;
    }
    gcl_test::TempDir dir("enospc");
    for (const Writer& w : every_writer()) {
        INFO(w.name << " " << w.file);
        const fs::path target = dir / w.file;
        write_text(target, "previous contents");
        // The temporary file the writer opens is /dev/full: every write fails with ENOSPC.
        fs::create_symlink("/dev/full", target.string() + ".tmp");
        CHECK_THROWS_WITH(w.write(target), Catch::Contains(w.name) && Catch::Contains(target.string()) &&
                                               Catch::Contains("No space left on device"));
        CHECK(read_text(target) == "previous contents");
        CHECK_FALSE(tmp_left(target));
        // With space again, the same call replaces the file.
        w.write(target);
        CHECK(read_text(target) != "previous contents");
        CHECK_FALSE(tmp_left(target));
    }
}

TEST_CASE("every writer in a read-only folder: an error naming it, the old file intact", "[robustness][io]") {
    gcl_test::TempDir dir("readonly");
    const fs::path folder = dir / "ro";
    fs::create_directories(folder);
    for (const Writer& w : every_writer()) write_text(folder / w.file, "previous contents");
    ::chmod(folder.c_str(), 0555);
    // root ignores permissions: then no folder here is read-only and the case cannot be run.
    const bool writable = ::access(folder.c_str(), W_OK) == 0;
    if (writable) {
        ::chmod(folder.c_str(), 0755);
        WARN("running as root: a read-only folder cannot be made here; see the full-disk case");
        return;
    }
    for (const Writer& w : every_writer()) {
        INFO(w.name << " " << w.file);
        const fs::path target = folder / w.file;
        CHECK_THROWS_WITH(w.write(target), Catch::Contains(w.name) && Catch::Contains(target.string()));
        CHECK(read_text(target) == "previous contents");
    }
    ::chmod(folder.c_str(), 0755);
}

TEST_CASE("a writer killed before it commits leaves the old file; the next write succeeds", "[robustness][io]") {
    gcl_test::TempDir dir("killed");
    const fs::path target = dir / "a.npy";
    Tensor<float> before(Shape{3});
    before.data()[0] = 1;
    gcl::save_npy<float>(target, before.cview());
    const std::string original = read_text(target);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Half a file in the temporary, then the process dies without unwinding.
        gcl::io::AtomicFile f(target, "save_npy");
        f.write(original.data(), original.size() / 2);
        ::_exit(9);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(read_text(target) == original);
    CHECK(gcl::load_npy<float>(target)(0) == 1.0f);
    // The leftover temporary is truncated and replaced by the next write.
    before.data()[0] = 2;
    gcl::save_npy<float>(target, before.cview());
    CHECK(gcl::load_npy<float>(target)(0) == 2.0f);
    CHECK_FALSE(tmp_left(target));
}
