#pragma once
// Learning-rate schedules: small function objects mapping a step index (0 for the first step)
// to a learning rate. Use one by setting the optimizer's rate before each step:
//   optimizer.set_learning_rate(schedule(step));  optimizer.step(arena);
#include <cmath>
#include <cstdint>
#include <numbers>

#include "gcl/core/error.hpp"

namespace gcl::optim {

// The same rate at every step.
class ConstantSchedule {
public:
    explicit ConstantSchedule(double learning_rate) : lr_(learning_rate) {
        check(std::isfinite(lr_) && lr_ >= 0, "ConstantSchedule", "invalid learning rate ", lr_);
    }
    double operator()(std::int64_t step) const {
        check(step >= 0, "ConstantSchedule", "negative step ", step);
        return lr_;
    }

private:
    double lr_;
};

// base_lr * gamma^floor(step / step_size), as torch.optim.lr_scheduler.StepLR.
class StepSchedule {
public:
    StepSchedule(double base_lr, std::int64_t step_size, double gamma)
        : base_(base_lr), step_size_(step_size), gamma_(gamma) {
        check(std::isfinite(base_) && base_ >= 0, "StepSchedule", "invalid base learning rate ", base_);
        check(step_size_ > 0, "StepSchedule", "step size must be positive, got ", step_size_);
        check(std::isfinite(gamma_) && gamma_ >= 0, "StepSchedule", "invalid gamma ", gamma_);
    }
    double operator()(std::int64_t step) const {
        check(step >= 0, "StepSchedule", "negative step ", step);
        return base_ * std::pow(gamma_, static_cast<double>(step / step_size_));
    }

private:
    double base_;
    std::int64_t step_size_;
    double gamma_;
};

// Linear warm-up, then cosine decay to min_lr, then min_lr:
//   step <  W:       base_lr * (step + 1) / W             (reaches base_lr at step W - 1)
//   W <= step < T:   min_lr + (base_lr - min_lr) * (1 + cos(pi * (step - W) / (T - W))) / 2
//   step >= T:       min_lr
// with W = warmup_steps and T = total_steps (the number of steps of the run).
class CosineWarmupSchedule {
public:
    CosineWarmupSchedule(double base_lr, std::int64_t warmup_steps, std::int64_t total_steps, double min_lr = 0.0)
        : base_(base_lr), min_(min_lr), warmup_(warmup_steps), total_(total_steps) {
        check(std::isfinite(base_) && base_ >= 0, "CosineWarmupSchedule", "invalid base learning rate ", base_);
        check(std::isfinite(min_) && min_ >= 0 && min_ <= base_, "CosineWarmupSchedule", "min_lr ", min_,
              " must lie in [0, base_lr = ", base_, "]");
        check(warmup_ >= 0 && warmup_ < total_, "CosineWarmupSchedule", "need 0 <= warmup_steps < total_steps, got ",
              warmup_, " and ", total_);
    }
    double operator()(std::int64_t step) const {
        check(step >= 0, "CosineWarmupSchedule", "negative step ", step);
        if (step < warmup_) return base_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
        if (step >= total_) return min_;
        const double progress = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
        return min_ + (base_ - min_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    }

private:
    double base_;
    double min_;
    std::int64_t warmup_;
    std::int64_t total_;
};

}  // namespace gcl::optim
