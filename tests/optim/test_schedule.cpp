// Learning-rate schedules against the plain formula and PyTorch's schedulers.
#include <cmath>
#include <filesystem>

#include "gcl/core/npy.hpp"
#include "gcl/optim/schedule.hpp"
#include "optim_test_util.hpp"

namespace fs = std::filesystem;
using gcl::optim::ConstantSchedule;
using gcl::optim::CosineWarmupSchedule;
using gcl::optim::StepSchedule;

namespace {
const fs::path schedule_dir = fs::path(GCL_TEST_FIXTURES) / "optim" / "schedule";
}

TEST_CASE("Cosine schedule with linear warm-up matches its formula", "[optim][schedule]") {
    const auto expected = gcl::load_npy<double>(schedule_dir / "cosine_warmup.npy");
    const CosineWarmupSchedule schedule(0.1, 5, 25, 0.001);
    REQUIRE(expected.numel() == 30);
    for (gcl::index_t s = 0; s < expected.numel(); ++s) {
        INFO("step " << s);
        CHECK(gcl::testing::close(schedule(s), expected(s), 1e-14, 1e-17));
    }
    // Shape of the curve: rises to base at the end of warm-up, falls to the floor, stays there.
    CHECK(schedule(0) == Approx(0.02));
    CHECK(schedule(4) == Approx(0.1));
    CHECK(schedule(5) == Approx(0.1));
    CHECK(schedule(15) == Approx(0.0505));
    CHECK(schedule(25) == 0.001);
    CHECK(schedule(1000) == 0.001);
    for (int s = 5; s < 25; ++s) CHECK(schedule(s + 1) <= schedule(s));
}

TEST_CASE("Without warm-up the cosine part matches torch CosineAnnealingLR", "[optim][schedule]") {
    const auto expected = gcl::load_npy<double>(schedule_dir / "cosine_annealing.npy");
    const CosineWarmupSchedule schedule(0.1, 0, 20, 0.001);
    for (gcl::index_t s = 0; s < expected.numel(); ++s) {
        INFO("step " << s);
        CHECK(gcl::testing::close(schedule(s), expected(s), 1e-12, 1e-15));
    }
}

TEST_CASE("Step schedule matches torch StepLR", "[optim][schedule]") {
    const auto expected = gcl::load_npy<double>(schedule_dir / "step_lr.npy");
    const StepSchedule schedule(0.1, 4, 0.5);
    for (gcl::index_t s = 0; s < expected.numel(); ++s) {
        INFO("step " << s);
        CHECK(gcl::testing::close(schedule(s), expected(s), 1e-14, 1e-17));
    }
}

TEST_CASE("Schedules reject invalid arguments", "[optim][schedule]") {
    CHECK(ConstantSchedule(0.3)(12345) == 0.3);
    CHECK_THROWS_AS(ConstantSchedule(-0.3), gcl::Error);
    CHECK_THROWS_AS(ConstantSchedule(0.3)(-1), gcl::Error);
    CHECK_THROWS_AS(StepSchedule(0.1, 0, 0.5), gcl::Error);
    CHECK_THROWS_AS(StepSchedule(0.1, 3, -0.5), gcl::Error);
    CHECK_THROWS_AS(StepSchedule(0.1, 3, 0.5)(-2), gcl::Error);
    CHECK_THROWS_AS(CosineWarmupSchedule(0.1, 10, 10), gcl::Error);
    CHECK_THROWS_AS(CosineWarmupSchedule(0.1, -1, 10), gcl::Error);
    CHECK_THROWS_AS(CosineWarmupSchedule(0.1, 2, 10, 0.2), gcl::Error);
    CHECK_THROWS_AS(CosineWarmupSchedule(std::nan(""), 2, 10), gcl::Error);
    CHECK_THROWS_AS(CosineWarmupSchedule(0.1, 2, 10)(-1), gcl::Error);
}
