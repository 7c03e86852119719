// Saving and loading a model's parameters and buffers and an optimizer's state.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "checkpoint_test_util.hpp"
#include "gcl/core/random.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/adam.hpp"
#include "gcl/optim/sgd.hpp"
#include "gcl/train/checkpoint_state.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
using gcl::nn::ParameterArena;
using gcl::train::Checkpoint;
using gcl::train::CheckpointWriter;
using gcl::train::LoadMode;
namespace optim = gcl::optim;
namespace train = gcl::train;
using namespace checkpoint_test;

namespace {

// A small model's layout: two layers and a batch norm with running statistics.
template <class T>
ParameterArena<T> make_model(bool with_head = true) {
    ParameterArena<T> arena;
    arena.add_parameter("conv.weight", Shape{4, 2, 3, 3});
    arena.add_parameter("conv.bias", Shape{4}, {.weight_decay = false});
    arena.add_parameter("bn.weight", Shape{4}, {.weight_decay = false});
    arena.add_parameter("bn.bias", Shape{4}, {.weight_decay = false});
    arena.add_buffer("bn.running_mean", Shape{4});
    arena.add_buffer("bn.running_var", Shape{4});
    if (with_head) arena.add_parameter("head.weight", Shape{3, 4});
    return arena;
}

template <class T>
void randomize(gcl::TensorView<T> v, std::uint64_t seed) {
    gcl::Rng rng(seed);
    gcl::fill_normal<T>(v, rng);
}

template <class T>
bool bitwise_equal(gcl::TensorView<const T> a, gcl::TensorView<const T> b) {
    return a.numel() == b.numel() &&
           (a.numel() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * std::size_t(a.numel())) == 0);
}

template <class T>
void set_gradient(ParameterArena<T>& arena, std::uint64_t seed) {
    randomize<T>(arena.flat_grads(), seed);
}

}  // namespace

TEMPLATE_TEST_CASE("Parameters and buffers round-trip by name", "[checkpoint][state]", float, double) {
    using T = TestType;
    ScratchDir dir;
    auto model = make_model<T>();
    randomize<T>(model.flat_values(), 1);
    randomize<T>(model.flat_buffers(), 2);
    CheckpointWriter w;
    train::add_parameters(w, model);
    w.write(dir / "m.gclc");

    const Checkpoint c = Checkpoint::read(dir / "m.gclc");
    CHECK(c.contains("param/conv.weight"));
    CHECK(c.shape("param/conv.weight") == Shape{4, 2, 3, 3});
    CHECK(c.contains("buffer/bn.running_var"));
    CHECK(c.dtype("param/head.weight") == gcl::train::dtype_of<T>());

    auto restored = make_model<T>();
    const auto report = train::load_parameters(c, restored);
    CHECK(report.loaded.size() == 7);
    CHECK(report.missing.empty());
    CHECK(bitwise_equal<T>(restored.flat_values(), model.flat_values()));
    CHECK(bitwise_equal<T>(restored.flat_buffers(), model.flat_buffers()));
}

TEMPLATE_TEST_CASE("A mismatched checkpoint is rejected and the model keeps its values", "[checkpoint][state]",
                   float, double) {
    using T = TestType;
    ScratchDir dir;
    auto model = make_model<T>();
    randomize<T>(model.flat_values(), 3);
    CheckpointWriter w;
    train::add_parameters(w, model);
    w.write(dir / "full.gclc");
    const Checkpoint full = Checkpoint::read(dir / "full.gclc");

    auto target = make_model<T>();
    randomize<T>(target.flat_values(), 4);
    const Tensor<T> original = Tensor<T>::copy_of(target.flat_values());
    const auto unchanged = [&] { return bitwise_equal<T>(target.flat_values(), original.cview()); };

    // A parameter the checkpoint lacks (the last one, so that an eager loader would have copied
    // the others already).
    auto headless = make_model<T>(false);
    randomize<T>(headless.flat_values(), 5);
    CheckpointWriter hw;
    train::add_parameters(hw, headless);
    hw.write(dir / "headless.gclc");
    const Checkpoint partial_file = Checkpoint::read(dir / "headless.gclc");
    try {
        train::load_parameters(partial_file, target);
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(std::string(e.what()).find("param/head.weight") != std::string::npos);
    }
    CHECK(unchanged());

    // A parameter the model lacks.
    CHECK_THROWS_AS(train::load_parameters(full, headless), gcl::Error);

    // Partial loading fills what is there and reports the rest.
    const auto report = train::load_parameters(partial_file, target, LoadMode::partial);
    CHECK(report.loaded.size() == 6);
    REQUIRE(report.missing.size() == 1);
    CHECK(report.missing[0] == "param/head.weight");
    CHECK(bitwise_equal<T>(target.value("conv.weight"), headless.value("conv.weight")));
    CHECK(bitwise_equal<T>(target.value("head.weight"),
                           original.cview().narrow(0, target.info(target.parameter("head.weight")).offset, 12)));
    auto small = make_model<T>(false);
    CHECK(train::load_parameters(full, small, LoadMode::partial).loaded.size() == 6);  // extra entries ignored

    // A wrong shape.
    ParameterArena<T> reshaped;
    reshaped.add_parameter("conv.weight", Shape{4, 2, 9});
    reshaped.add_parameter("conv.bias", Shape{4});
    randomize<T>(reshaped.flat_values(), 6);
    const Tensor<T> reshaped_before = Tensor<T>::copy_of(reshaped.flat_values());
    try {
        train::load_parameters(full, reshaped, LoadMode::partial);
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(std::string(e.what()).find("[4, 2, 3, 3]") != std::string::npos);
    }
    CHECK(bitwise_equal<T>(reshaped.flat_values(), reshaped_before.cview()));

    // A different element type.
    using Other = std::conditional_t<std::is_same_v<T, float>, double, float>;
    auto other = make_model<Other>();
    CHECK_THROWS_AS(train::load_parameters(full, other), gcl::Error);
}

namespace {

// Trains `steps` steps with seeded gradients starting at gradient seed `first_seed`.
template <class T, class Optimizer>
void train_steps(ParameterArena<T>& model, Optimizer& opt, int first_seed, int steps) {
    for (int s = 0; s < steps; ++s) {
        set_gradient(model, 100 + first_seed + s);
        opt.step(model);
    }
}

// Saving after 3 steps and resuming gives bit-for-bit the run that never stopped.
template <class T, class Optimizer>
void check_resume(const Optimizer& prototype) {
    ScratchDir dir;
    auto model = make_model<T>();
    randomize<T>(model.flat_values(), 7);
    randomize<T>(model.flat_buffers(), 8);
    Optimizer opt = prototype;
    train_steps(model, opt, 0, 3);
    train::save_training_state(dir / "run.gclc", model, opt);
    train_steps(model, opt, 3, 2);

    auto resumed_model = make_model<T>();
    Optimizer resumed = prototype;
    train::load_training_state(dir / "run.gclc", resumed_model, resumed);
    CHECK(resumed.step_count() == 3);
    train_steps(resumed_model, resumed, 3, 2);
    CHECK(resumed.step_count() == 5);
    CHECK(bitwise_equal<T>(resumed_model.flat_values(), model.flat_values()));
    CHECK(bitwise_equal<T>(resumed_model.flat_buffers(), model.flat_buffers()));
    const auto a = opt.state();
    const auto b = resumed.state();
    REQUIRE(a.size() == b.size());
    for (std::size_t k = 0; k < a.size(); ++k) {
        INFO("state " << a[k].name);
        CHECK(bitwise_equal<T>(a[k].values, b[k].values));
    }
}

}  // namespace

TEMPLATE_TEST_CASE("Optimizer state round-trips: a resumed run equals an uninterrupted one",
                   "[checkpoint][state]", float, double) {
    using T = TestType;
    check_resume<T>(optim::SGD<T>({.learning_rate = 0.1}));
    check_resume<T>(optim::SGD<T>({.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01}));
    check_resume<T>(optim::Adam<T>({.learning_rate = 0.01, .amsgrad = true}));
    check_resume<T>(optim::AdamW<T>({.learning_rate = 0.01, .weight_decay = 0.05}));
}

TEMPLATE_TEST_CASE("Optimizer state is stored per parameter and checked on load", "[checkpoint][state]", float,
                   double) {
    using T = TestType;
    ScratchDir dir;
    auto model = make_model<T>();
    randomize<T>(model.flat_values(), 9);
    optim::Adam<T> adam({.learning_rate = 0.01});
    train_steps(model, adam, 0, 2);
    train::save_training_state(dir / "adam.gclc", model, adam);

    const Checkpoint c = Checkpoint::read(dir / "adam.gclc");
    CHECK(c.text("optim/algorithm") == "adam");
    CHECK(c.scalar<std::int64_t>("optim/step") == 2);
    CHECK(c.shape("optim/exp_avg/conv.weight") == Shape{4, 2, 3, 3});
    CHECK(c.shape("optim/exp_avg_sq/head.weight") == Shape{3, 4});
    const auto& head = model.info(model.parameter("head.weight"));
    CHECK(bitwise_equal<T>(c.get<T>("optim/exp_avg/head.weight").cview().flat(),
                           adam.state()[0].values.narrow(0, head.offset, head.numel())));

    // Another algorithm, or a configuration with other state buffers, refuses the state, and
    // neither the model nor the optimizer changes.
    auto other_model = make_model<T>();
    randomize<T>(other_model.flat_values(), 10);
    const Tensor<T> before = Tensor<T>::copy_of(other_model.flat_values());
    optim::AdamW<T> adamw({.learning_rate = 0.01});
    CHECK_THROWS_AS(train::load_training_state(dir / "adam.gclc", other_model, adamw), gcl::Error);
    optim::SGD<T> sgd({.learning_rate = 0.1, .momentum = 0.9});
    CHECK_THROWS_AS(train::load_training_state(dir / "adam.gclc", other_model, sgd), gcl::Error);
    optim::Adam<T> amsgrad({.learning_rate = 0.01, .amsgrad = true});
    try {
        train::load_training_state(dir / "adam.gclc", other_model, amsgrad);
        FAIL("no exception");
    } catch (const gcl::Error& e) {
        CHECK(std::string(e.what()).find("max_exp_avg_sq") != std::string::npos);
    }
    CHECK(amsgrad.step_count() == 0);
    CHECK(amsgrad.size() == 0);
    CHECK(bitwise_equal<T>(other_model.flat_values(), before.cview()));

    // A model with other parameters refuses it too.
    auto headless = make_model<T>(false);
    optim::Adam<T> fresh({.learning_rate = 0.01});
    CHECK_THROWS_AS(train::load_training_state(dir / "adam.gclc", headless, fresh), gcl::Error);
    CHECK(fresh.step_count() == 0);

    // A corrupt file changes nothing either.
    auto bytes = read_bytes(dir / "adam.gclc");
    bytes[bytes.size() / 2] ^= 0x40;
    write_bytes(dir / "corrupt.gclc", bytes);
    optim::Adam<T> adam2({.learning_rate = 0.01});
    CHECK_THROWS_AS(train::load_training_state(dir / "corrupt.gclc", other_model, adam2), gcl::Error);
    CHECK(bitwise_equal<T>(other_model.flat_values(), before.cview()));
    CHECK(adam2.step_count() == 0);
}

TEMPLATE_TEST_CASE("An optimizer saved before its first step loads as a fresh one", "[checkpoint][state]", float,
                   double) {
    using T = TestType;
    ScratchDir dir;
    auto model = make_model<T>();
    optim::SGD<T> unused({.learning_rate = 0.1, .momentum = 0.9});
    train::save_training_state(dir / "fresh.gclc", model, unused);
    const Checkpoint c = Checkpoint::read(dir / "fresh.gclc");
    CHECK(c.scalar<std::int64_t>("optim/step") == 0);
    CHECK_FALSE(c.contains("optim/momentum_buffer/conv.weight"));

    optim::SGD<T> used({.learning_rate = 0.1, .momentum = 0.9});
    train_steps(model, used, 0, 2);
    train::load_optimizer(c, used, model);
    CHECK(used.step_count() == 0);
    CHECK(used.size() == 0);

    // SGD without momentum has no state but its step count.
    optim::SGD<T> plain({.learning_rate = 0.1});
    train_steps(model, plain, 0, 4);
    CheckpointWriter w;
    train::add_optimizer(w, plain, model, "sgd_state");
    w.write(dir / "plain.gclc");
    optim::SGD<T> plain2({.learning_rate = 0.1});
    train::load_optimizer(Checkpoint::read(dir / "plain.gclc"), plain2, model, "sgd_state");
    CHECK(plain2.step_count() == 4);
    CHECK(plain2.state().empty());
    // The prefix keeps several optimizers apart.
    CHECK_THROWS_AS(train::load_optimizer(Checkpoint::read(dir / "plain.gclc"), plain2, model), gcl::Error);
}
