// The trainers on cuda against the same trainers on the cpu, from the same parameters: a few GCL
// pre-training steps (GclPretrainer<float, gcl::cuda>), a few fine-tuning steps
// (SegmentationTrainer over nn::UNet<float, gcl::cuda>) and the evaluation after them, and
// checkpoints that cross the devices (saved on cuda and resumed on the cpu, and the other way).
// Each comparison prints its largest difference. Skipped (exit 77) without a GPU.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "gcl/cuda.cuh"
#include "gcl/data/phantom.hpp"
#include "gcl/io/read_file.hpp"
#include "gcl/metrics/evaluate.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "gcl/train/pretrain_probe.hpp"
#include "gcl/train/segmentation_trainer.hpp"
#include "support/cuda_parity.hpp"

using gcl::index_t;
using gcl::Shape;
using gcl::Tensor;
namespace gd = gcl::data;
namespace nn = gcl::nn;
namespace ops = gcl::ops;
namespace tr = gcl::train;

namespace {

// relative_gap (support/cuda_parity.hpp), printed under `what`.
double relative_difference(const char* what, const Tensor<float>& expected, const Tensor<float>& got) {
    const double gap = gcl_test::relative_gap(expected, got);
    std::printf("%s: %lld values, largest difference %.3g of the largest value\n", what,
                static_cast<long long>(expected.numel()), gap);
    return gap;
}

// A cpu arena's values and buffers into a cuda arena of the same model.
void copy_arena(const nn::ParameterArena<float>& from, nn::ParameterArena<float, gcl::cuda>& to) {
    REQUIRE(from.size() == to.size());
    REQUIRE(from.buffer_size() == to.buffer_size());
    ops::copy(gcl::to_device(Tensor<float>::copy_of(from.flat_values())).cview(), to.flat_values());
    if (from.buffer_size() > 0)
        ops::copy(gcl::to_device(Tensor<float>::copy_of(from.flat_buffers())).cview(), to.flat_buffers());
}

template <class Arena>
Tensor<float> values_of(const Arena& arena) {
    return ops::device_to_host(arena.flat_values());
}
template <class Arena>
Tensor<float> buffers_of(const Arena& arena) {
    return ops::device_to_host(arena.flat_buffers());
}

std::filesystem::path temp_checkpoint(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("gcl_test_cuda_" + std::to_string(::getpid()) + "_" + name + ".gclckpt");
}

const std::vector<gd::Slice>& slices() {
    static const std::vector<gd::Slice> s = gd::phantom_slices({.patients = 4, .slices = 8, .size = 32, .seed = 6, .profile = {}});
    return s;
}

const nn::UNetOptions unet_options{.in_channels = 1, .classes = 4, .depth = 2, .base_width = 4};
const nn::PretrainModelOptions model_options{
    .encoder = unet_options.encoder(), .image_hidden = 8, .image_out = 6, .pixel_hidden = 8, .pixel_out = 6};

// The library's objective without GradFilter: float anchor scores that agree to rounding may rank
// differently on the two devices (test_cuda_train compares the filters in double), and a
// different anchor would make the runs part by more than rounding.
tr::GclPretrainerOptions pretrainer_options(tr::Mitigation mitigation = tr::Mitigation::parameters) {
    tr::GclPretrainerOptions o;
    o.objective.mitigation = mitigation;
    o.objective.filter = tr::PixelFilter::none;
    o.steps = 3;
    o.warmup_steps = 1;
    o.optimizer = tr::PretrainOptimizer::sgd;
    o.sgd.learning_rate = 0.05;
    o.sampler.batch_size = 6;
    o.sampler.seed = 1;
    o.objective.pixel_samples = 4;
    return o;
}

tr::SegmentationTrainerOptions segmentation_options() {
    tr::SegmentationTrainerOptions o;
    o.steps = 3;
    o.warmup_steps = 1;
    o.batch_size = 4;
    o.adam.learning_rate = 3e-3;
    o.seed = 4;
    return o;
}

}  // namespace

TEST_CASE("GclPretrainer on cuda follows the cpu's steps", "[cuda][train][pretrainer]") {
    const tr::Mitigation mitigation = GENERATE(tr::Mitigation::parameters, tr::Mitigation::representation);
    INFO("mitigation " << static_cast<int>(mitigation));
    nn::ParameterArena<float> cpu_arena;
    nn::PretrainModel<float> cpu_model(cpu_arena, model_options, 9);
    nn::ParameterArena<float, gcl::cuda> cuda_arena;
    nn::PretrainModel<float, gcl::cuda> cuda_model(cuda_arena, model_options, 9);
    copy_arena(cpu_arena, cuda_arena);

    tr::GclPretrainer<float> on_cpu(cpu_model, cpu_arena, slices(), pretrainer_options(mitigation));
    tr::GclPretrainer<float, gcl::cuda> on_cuda(cuda_model, cuda_arena, slices(), pretrainer_options(mitigation));
    while (!on_cpu.done()) {
        const tr::GclStepReport a = on_cpu.step();
        const tr::GclStepReport b = on_cuda.step();
        INFO("step " << on_cpu.steps_done());
        REQUIRE(a.image_losses.size() == b.image_losses.size());
        for (std::size_t k = 0; k < a.image_losses.size(); ++k) {
            CHECK(b.image_losses[k] == Approx(a.image_losses[k]).epsilon(1e-4));
            CHECK(b.pixel_losses[k] == Approx(a.pixel_losses[k]).epsilon(1e-4));
        }
        CHECK(b.total == Approx(a.total).epsilon(1e-4));
        // Conflicts are signs of dot products: one near zero may fall either way on the two devices.
        CHECK(std::abs(b.conflicting_pairs - a.conflicting_pairs) <= a.conflicting_pairs / 100);
        CHECK(b.candidate_pairs == a.candidate_pairs);
    }
    CHECK(on_cuda.steps_done() == on_cpu.steps_done());
    CHECK(relative_difference("pre-training parameters, cuda vs cpu, 3 steps", values_of(cpu_arena),
                              values_of(cuda_arena)) < 1e-3);
    CHECK(relative_difference("pre-training batch-norm buffers, cuda vs cpu, 3 steps", buffers_of(cpu_arena),
                              buffers_of(cuda_arena)) < 1e-3);

    // The probe's embeddings come back to the host from either device.
    const Tensor<float> z_cpu = tr::embed_images<float>(cpu_model, slices(), 16);
    const Tensor<float> z_cuda = tr::embed_images<float>(cuda_model, slices(), 16);
    CHECK(relative_difference("image embeddings, cuda vs cpu", z_cpu, z_cuda) < 1e-3);
}

TEST_CASE("a pre-training checkpoint crosses the devices", "[cuda][train][checkpoint]") {
    const std::filesystem::path from_cuda = temp_checkpoint("from_cuda"), from_cpu = temp_checkpoint("from_cpu");
    tr::GclPretrainerOptions o = pretrainer_options();
    o.steps = 4;

    // Two steps on cuda, saved.
    nn::ParameterArena<float, gcl::cuda> cuda_arena;
    nn::PretrainModel<float, gcl::cuda> cuda_model(cuda_arena, model_options, 9);
    tr::GclPretrainer<float, gcl::cuda> on_cuda(cuda_model, cuda_arena, slices(), o);
    on_cuda.step();
    on_cuda.step();
    on_cuda.save(from_cuda);

    // Resumed on the cpu, in a model initialised otherwise: the same values, bit for bit, the same
    // momentum and step count; saved again, the cpu writes the very same file.
    nn::ParameterArena<float> cpu_arena;
    nn::PretrainModel<float> cpu_model(cpu_arena, model_options, 77);
    tr::GclPretrainer<float> on_cpu(cpu_model, cpu_arena, slices(), o);
    on_cpu.resume(from_cuda);
    CHECK(on_cpu.steps_done() == 2);
    CHECK(gcl_test::same_bits(values_of(cuda_arena), values_of(cpu_arena)));
    CHECK(gcl_test::same_bits(buffers_of(cuda_arena), buffers_of(cpu_arena)));
    auto& cpu_sgd = std::get<gcl::optim::SGD<float>>(on_cpu.optimizer());
    auto& cuda_sgd = std::get<gcl::optim::SGD<float, gcl::cuda>>(on_cuda.optimizer());
    REQUIRE(cpu_sgd.state().size() == cuda_sgd.state().size());
    CHECK(cpu_sgd.step_count() == cuda_sgd.step_count());
    for (std::size_t k = 0; k < cpu_sgd.state().size(); ++k)
        CHECK(gcl_test::same_bits(ops::device_to_host(cuda_sgd.state()[k].values),
                                  ops::device_to_host(cpu_sgd.state()[k].values)));
    on_cpu.save(from_cpu);
    CHECK(gcl::io::read_file_bytes(from_cpu, "test") == gcl::io::read_file_bytes(from_cuda, "test"));

    // Both continue: the cpu run and the cuda run stay within the devices' rounding.
    on_cpu.step();
    on_cuda.step();
    CHECK(relative_difference("parameters one step after the cross-device resume", values_of(cpu_arena),
                              values_of(cuda_arena)) < 1e-3);

    // The other way: the cpu's state resumed on cuda, then saved there, is the cpu's file.
    on_cpu.save(from_cpu);
    nn::ParameterArena<float, gcl::cuda> resumed_arena;
    nn::PretrainModel<float, gcl::cuda> resumed_model(resumed_arena, model_options, 78);
    tr::GclPretrainer<float, gcl::cuda> resumed(resumed_model, resumed_arena, slices(), o);
    resumed.resume(from_cpu);
    CHECK(resumed.steps_done() == 3);
    CHECK(gcl_test::same_bits(values_of(cpu_arena), values_of(resumed_arena)));
    CHECK(gcl_test::same_bits(buffers_of(cpu_arena), buffers_of(resumed_arena)));
    resumed.save(from_cuda);
    CHECK(gcl::io::read_file_bytes(from_cuda, "test") == gcl::io::read_file_bytes(from_cpu, "test"));

    // A checkpoint of another run is refused on cuda, and nothing changes there.
    o.sampler.batch_size = 8;
    nn::ParameterArena<float, gcl::cuda> other_arena;
    nn::PretrainModel<float, gcl::cuda> other_model(other_arena, model_options, 9);
    tr::GclPretrainer<float, gcl::cuda> other(other_model, other_arena, slices(), o);
    const Tensor<float> before = values_of(other_arena);
    CHECK_THROWS_WITH(other.resume(from_cpu), Catch::Contains("batch_size = 6, this trainer has 8"));
    CHECK(gcl_test::same_bits(before, values_of(other_arena)));
    CHECK(other.steps_done() == 0);
    std::filesystem::remove(from_cuda);
    std::filesystem::remove(from_cpu);
}

TEST_CASE("SegmentationTrainer and the evaluation on cuda follow the cpu", "[cuda][train][segmentation]") {
    nn::ParameterArena<float> cpu_arena;
    nn::UNet<float> cpu_unet(cpu_arena, unet_options, 3);
    nn::ParameterArena<float, gcl::cuda> cuda_arena;
    nn::UNet<float, gcl::cuda> cuda_unet(cuda_arena, unet_options, 3);
    copy_arena(cpu_arena, cuda_arena);

    tr::SegmentationTrainer<float, nn::UNet<float>> on_cpu(cpu_unet, cpu_arena, slices(), segmentation_options());
    tr::SegmentationTrainer<float, nn::UNet<float, gcl::cuda>> on_cuda(cuda_unet, cuda_arena, slices(),
                                                                      segmentation_options());
    while (!on_cpu.done()) {
        const tr::SegmentationStepReport a = on_cpu.step();
        const tr::SegmentationStepReport b = on_cuda.step();
        INFO("step " << on_cpu.steps_done());
        CHECK(b.cross_entropy == Approx(a.cross_entropy).epsilon(1e-4));
        CHECK(b.dice_loss == Approx(a.dice_loss).epsilon(1e-4));
    }
    CHECK(relative_difference("fine-tuning parameters, cuda vs cpu, 3 steps", values_of(cpu_arena),
                              values_of(cuda_arena)) < 1e-3);
    CHECK(relative_difference("fine-tuning batch-norm buffers, cuda vs cpu, 3 steps", buffers_of(cpu_arena),
                              buffers_of(cuda_arena)) < 1e-3);

    // A checkpoint of the fine-tuning saved on cuda resumes on the cpu with the same values.
    const std::filesystem::path path = temp_checkpoint("finetune");
    on_cuda.save(path);
    nn::ParameterArena<float> resumed_arena;
    nn::UNet<float> resumed_unet(resumed_arena, unet_options, 77);
    tr::SegmentationTrainer<float, nn::UNet<float>> resumed(resumed_unet, resumed_arena, slices(), segmentation_options());
    resumed.resume(path);
    CHECK(resumed.steps_done() == 3);
    CHECK(gcl_test::same_bits(values_of(cuda_arena), values_of(resumed_arena)));
    CHECK(gcl_test::same_bits(buffers_of(cuda_arena), buffers_of(resumed_arena)));
    std::filesystem::remove(path);

    // The evaluation: the same network (the cuda one's values on both devices) predicts the same
    // class maps but for pixels whose two best logits lie within rounding, and the volumes' Dice agree.
    copy_arena(resumed_arena, cuda_arena);
    std::vector<index_t> all(slices().size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<index_t>(i);
    const Tensor<std::uint8_t> p_cpu = gcl::metrics::predict_slices<float>(resumed_unet, slices(), all, 8);
    const Tensor<std::uint8_t> p_cuda = gcl::metrics::predict_slices<float>(cuda_unet, slices(), all, 8);
    REQUIRE(p_cpu.shape() == p_cuda.shape());
    index_t differ = 0;
    for (index_t i = 0; i < p_cpu.numel(); ++i) differ += p_cpu.data()[i] != p_cuda.data()[i];
    std::printf("predicted pixels that differ, cuda vs cpu: %lld of %lld\n", static_cast<long long>(differ),
                static_cast<long long>(p_cpu.numel()));
    CHECK(differ <= p_cpu.numel() / 1000);
    const auto e_cpu = gcl::metrics::evaluate_segmentation<float>(resumed_unet, slices(), {.classes = 4});
    const auto e_cuda = gcl::metrics::evaluate_segmentation<float>(cuda_unet, slices(), {.classes = 4});
    REQUIRE(e_cpu.volumes.size() == e_cuda.volumes.size());
    std::printf("mean foreground Dice: cpu %.6f, cuda %.6f\n", e_cpu.mean_foreground_dice(), e_cuda.mean_foreground_dice());
    CHECK(e_cuda.mean_foreground_dice() == Approx(e_cpu.mean_foreground_dice()).margin(0.01));
}
