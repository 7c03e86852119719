// Parity with torch.optim.SGD / Adam / AdamW: fixtures from scripts/fixtures/make_optim_fixtures.py.
#include <filesystem>
#include <set>
#include <string>

#include "gcl/core/npy.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/sgd.hpp"
#include "optim_test_util.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace fs = std::filesystem;
namespace optim = gcl::optim;

namespace {

const fs::path fixture_root = fs::path(GCL_TEST_FIXTURES) / "optim";

template <class T>
std::string dtype_tag() {
    return std::is_same_v<T, float> ? "f32" : "f64";
}

// config.npy: [lr, momentum, dampening, weight_decay, nesterov, beta1, beta2, eps, amsgrad, maximize]
optim::SgdOptions sgd_options(const Tensor<double>& c) {
    return optim::SgdOptions{.learning_rate = c(0),
                             .momentum = c(1),
                             .dampening = c(2),
                             .weight_decay = c(3),
                             .nesterov = c(4) != 0,
                             .maximize = c(9) != 0};
}
optim::AdamOptions adam_options(const Tensor<double>& c) {
    return optim::AdamOptions{.learning_rate = c(0),
                              .beta1 = c(5),
                              .beta2 = c(6),
                              .eps = c(7),
                              .weight_decay = c(3),
                              .amsgrad = c(8) != 0,
                              .maximize = c(9) != 0};
}

// The fixture model: w (6 x 5) with weight decay, then b (7) without, P = 37.
template <class T>
gcl::nn::ParameterArena<T> fixture_arena() {
    gcl::nn::ParameterArena<T> arena;
    arena.add_parameter("w", Shape{6, 5});
    arena.add_parameter("b", Shape{7}, {.weight_decay = false});
    return arena;
}

template <class T>
void copy_into(gcl::TensorView<T> dst, gcl::TensorView<const T> src) {
    REQUIRE(dst.numel() == src.numel());
    std::copy(src.data(), src.data() + src.numel(), dst.data());
}

// Runs the three steps of a fixture, through the arena (per-parameter options) or, for cases
// without weight decay, also through the plain flat-vector step.
template <class T, class Optimizer>
void check_case(const std::string& name, const Optimizer& prototype, bool flat_path) {
    const fs::path dir = fixture_root / (name + "_" + dtype_tag<T>());
    using Tol = optim_test::parity_tolerance<T>;
    const Tensor<T> params0 = gcl::load_npy<T>(dir / "params0.npy");
    const Tensor<T> grads = gcl::load_npy<T>(dir / "grads.npy");
    const Tensor<T> expected = gcl::load_npy<T>(dir / "params.npy");
    const index_t steps = grads.dim(0);
    REQUIRE(steps == 3);

    // Every state file of the fixture is checked, and every state of the optimizer has one.
    std::set<std::string> fixture_states;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string stem = entry.path().stem().string();
        if (stem != "config" && stem != "params0" && stem != "grads" && stem != "params") fixture_states.insert(stem);
    }
    std::set<std::string> optimizer_states;
    for (std::string_view s : prototype.state_names()) optimizer_states.insert(std::string(s));
    REQUIRE(fixture_states == optimizer_states);

    auto arena = fixture_arena<T>();
    REQUIRE(arena.size() == params0.numel());
    copy_into<T>(arena.flat_values(), params0.cview());
    Optimizer via_arena = prototype;
    Optimizer via_flat = prototype;
    Tensor<T> flat_params = params0;

    for (index_t k = 0; k < steps; ++k) {
        INFO(name << " " << dtype_tag<T>() << ", after step " << k + 1);
        copy_into<T>(arena.flat_grads(), grads.cview().select(0, k));
        via_arena.step(arena);
        CHECK(via_arena.step_count() == k + 1);
        const auto row = expected.cview().select(0, k);
        CHECK(optim_test::mismatch(arena.flat_values(), row, Tol::rtol, Tol::atol) == "");
        for (const auto& s : via_arena.state()) {
            const Tensor<T> state = gcl::load_npy<T>(dir / (std::string(s.name) + ".npy"));
            INFO("state " << s.name);
            CHECK(optim_test::mismatch(s.values, state.cview().select(0, k), Tol::rtol, Tol::atol) == "");
        }
        if (flat_path) {
            via_flat.step(flat_params.view(), grads.cview().select(0, k));
            CHECK(optim_test::mismatch(flat_params.cview(), row, Tol::rtol, Tol::atol) == "");
        }
    }
}

template <class T>
void check_fixture(const std::string& name) {
    const Tensor<double> config = gcl::load_npy<double>(fixture_root / (name + "_" + dtype_tag<T>()) / "config.npy");
    const bool no_decay = config(3) == 0;
    if (name.rfind("sgd", 0) == 0) {
        check_case<T>(name, optim::SGD<T>(sgd_options(config)), no_decay);
    } else if (name.rfind("adamw", 0) == 0) {
        check_case<T>(name, optim::AdamW<T>(adam_options(config)), no_decay);
    } else {
        REQUIRE(name.rfind("adam", 0) == 0);
        check_case<T>(name, optim::Adam<T>(adam_options(config)), no_decay);
    }
}

}  // namespace

TEMPLATE_TEST_CASE("SGD matches torch.optim.SGD over three steps", "[optim][parity]", float, double) {
    for (const char* name : {"sgd_plain", "sgd_momentum", "sgd_nesterov", "sgd_weight_decay", "sgd_maximize"})
        check_fixture<TestType>(name);
}

TEMPLATE_TEST_CASE("Adam matches torch.optim.Adam over three steps", "[optim][parity]", float, double) {
    for (const char* name : {"adam", "adam_weight_decay_amsgrad"}) check_fixture<TestType>(name);
}

TEMPLATE_TEST_CASE("AdamW matches torch.optim.AdamW over three steps", "[optim][parity]", float, double) {
    for (const char* name : {"adamw", "adamw_amsgrad_maximize"}) check_fixture<TestType>(name);
}

TEST_CASE("Every optimizer fixture is exercised", "[optim][parity]") {
    const std::set<std::string> tested = {"sgd_plain",  "sgd_momentum", "sgd_nesterov",
                                          "sgd_weight_decay", "sgd_maximize", "adam",
                                          "adam_weight_decay_amsgrad", "adamw", "adamw_amsgrad_maximize"};
    for (const auto& entry : fs::directory_iterator(fixture_root)) {
        const std::string dir = entry.path().filename().string();
        if (dir == "schedule") continue;
        const std::string name = dir.substr(0, dir.rfind('_'));
        INFO(dir);
        CHECK(tested.count(name) == 1);
    }
}
