// Optimizer basics: a linear model y = X w + b whose parameters live in a ParameterArena, fitted
// by least squares with AdamW and a cosine schedule with warm-up; halfway through, the training
// state is saved to a checkpoint, and a fresh model and optimizer resume from it and finish with
// exactly the parameters the uninterrupted run reaches.
//
//   ./optimizer_basics [checkpoint.gclc]
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "gcl/gcl.hpp"

namespace {

constexpr gcl::index_t samples = 256, features = 16, total_steps = 400;

struct Data {
    gcl::Tensor<double> X{gcl::Shape{samples, features}};
    gcl::Tensor<double> y{gcl::Shape{samples}};
};

// y = X w_true + 0.5 + noise, from a seeded generator.
Data make_data() {
    Data d;
    gcl::Rng rng(/*seed=*/2023);
    gcl::fill_normal(d.X.view(), rng, 0.0, 1.0);
    gcl::Tensor<double> w_true(gcl::Shape{features});
    gcl::fill_normal(w_true.view(), rng, 0.0, 1.0);
    gcl::Tensor<double> noise(gcl::Shape{samples});
    gcl::fill_normal(noise.view(), rng, 0.0, 0.01);
    gcl::as_eigen_vector(d.y.view()) = gcl::as_eigen(d.X.cview()) * gcl::as_eigen_vector(w_true.cview());
    for (gcl::index_t i = 0; i < samples; ++i) d.y(i) += 0.5 + noise(i);
    return d;
}

// The model registers its parameters by name and keeps their handles.
struct LinearModel {
    gcl::nn::ParameterArena<double> arena;
    gcl::nn::ParamHandle weight = arena.add_parameter("linear.weight", gcl::Shape{features});
    gcl::nn::ParamHandle bias = arena.add_parameter("linear.bias", gcl::Shape{1}, {.weight_decay = false});

    // Loss 0.5 * mean((X w + b - y)^2); its gradient goes into the arena's current target.
    double loss_and_backward(const Data& d) {
        const auto w = gcl::as_eigen_vector(arena.value(weight));
        const Eigen::VectorXd r =
            (gcl::as_eigen(d.X.cview()) * w).array() + arena.value(bias)(0) - gcl::as_eigen_vector(d.y.cview()).array();
        arena.begin_backward(gcl::WriteMode::overwrite);
        gcl::Tensor<double> dw(gcl::Shape{features});
        gcl::as_eigen_vector(dw.view()) = gcl::as_eigen(d.X.cview()).transpose() * r / double(samples);
        arena.accumulate_grad(weight, dw.cview());
        arena.accumulate_grad(bias, gcl::Tensor<double>::from(gcl::Shape{1}, {r.mean()}).cview());
        return 0.5 * r.squaredNorm() / double(samples);
    }
};

double train(LinearModel& model, gcl::optim::AdamW<double>& opt, const Data& d, gcl::index_t from, gcl::index_t to) {
    const gcl::optim::CosineWarmupSchedule schedule(/*base_lr=*/0.1, /*warmup_steps=*/20, total_steps,
                                                    /*min_lr=*/1e-4);
    double loss = 0;
    for (gcl::index_t step = from; step < to; ++step) {
        loss = model.loss_and_backward(d);
        opt.set_learning_rate(schedule(step));
        opt.step(model.arena);
    }
    return loss;
}

}  // namespace

namespace {
int run(int argc, char** argv) {
    const std::filesystem::path path =
        argc > 1 ? argv[1] : std::filesystem::temp_directory_path() / "gcl_optimizer_basics.gclc";
    const Data data = make_data();
    const gcl::optim::AdamOptions options{.learning_rate = 0.1, .weight_decay = 1e-4};

    // The uninterrupted run, with a checkpoint at the halfway mark.
    LinearModel model;
    gcl::optim::AdamW<double> opt(options);
    std::printf("initial loss %.6f\n", model.loss_and_backward(data));
    train(model, opt, data, 0, total_steps / 2);
    gcl::train::save_training_state(path, model.arena, opt);
    std::printf("saved %s after %lld steps\n", path.string().c_str(), static_cast<long long>(opt.step_count()));
    const double final_loss = train(model, opt, data, total_steps / 2, total_steps);

    // A fresh model and optimizer resume from the checkpoint.
    LinearModel resumed;
    gcl::optim::AdamW<double> resumed_opt(options);
    gcl::train::load_training_state(path, resumed.arena, resumed_opt);
    const double resumed_loss = train(resumed, resumed_opt, data, resumed_opt.step_count(), total_steps);

    double max_difference = 0;
    for (gcl::index_t i = 0; i < model.arena.size(); ++i)
        max_difference = std::max(max_difference,
                                  std::abs(model.arena.flat_values()(i) - resumed.arena.flat_values()(i)));
    std::printf("bias %.4f (true 0.5)\n", model.arena.value(model.bias)(0));
    std::printf("final loss %.6f, resumed run %.6f, largest parameter difference %g\n", final_loss, resumed_loss,
                max_difference);
    return max_difference == 0 && final_loss < 1e-3 ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const gcl::Error& e) {  // e.g. a checkpoint path in a folder that does not exist
        std::fprintf(stderr, "optimizer_basics: %s\n", e.what());
        return 1;
    }
}
