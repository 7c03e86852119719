// One data-parallel training step of the demo-sized model on S ranks of an MPI job: wall time per
// step and the bytes each rank sends, against plain data parallel (one all-reduce of the P
// parameter gradients, and nothing else). Three steps:
//   pretrain-parameters  GCL pre-training, parameter-level GradMitigator (sharded), default GradFilter
//   pretrain-none        the same contrast with no surgery (summed losses, no filter)
//   finetune             U-Net fine-tuning, cross-entropy + Dice
// Model: U-Net encoder depth 3, base width 16 (heads 128/96 and 64/48), 64 x 64 phantom slices,
// global batch 16, synchronised batch norm. Every rank trains on its share of each global batch.
//
//   OMP_NUM_THREADS=2 mpirun -np 1 build/benchmarks/dist_step [--steps 3]
//   OMP_NUM_THREADS=1 mpirun -np 2 build/benchmarks/dist_step [--steps 3]
// One line per step kind (rank 0):
//   dist_step S=<S> <kind> P=<P>: <ms> ms/step, sent <MB> MB/step (gradient <MB>, exchange <MB>), plain data parallel <MB> MB
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gcl/data/phantom.hpp"
#include "gcl/dist/data_parallel_gcl.hpp"
#include "gcl/dist/data_parallel_segmentation.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/nn/unet.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "gcl/train/segmentation_trainer.hpp"
#include "rank_timing.hpp"

namespace dist = gcl::dist;
namespace nn = gcl::nn;
namespace tr = gcl::train;
using gcl::index_t;

namespace {

constexpr index_t global_batch = 16;
const nn::UNetOptions unet_options{.in_channels = 1, .classes = 4, .depth = 3, .base_width = 16};

void report(dist::MpiCommunicator& comm, const char* kind, index_t P, double gradient_bytes,
            const gcl::bench::RankTiming& t) {
    if (comm.rank() != 0) return;
    const double plain = 2.0 * static_cast<double>(gcl::dist::Traffic::ring_share(4 * static_cast<std::uint64_t>(P), comm.size()));
    const double mb = 1e-6;
    std::printf("dist_step S=%d %s P=%lld: %.0f ms/step, sent %.3f MB/step (gradient %.3f, exchange %.3f; %.0f "
                "collectives), plain data parallel %.3f MB\n",
                comm.size(), kind, static_cast<long long>(P), t.median_ms, t.bytes_sent * mb, gradient_bytes * mb,
                (t.bytes_sent - gradient_bytes) * mb, t.collectives, plain * mb);
    std::fflush(stdout);
}

void pretrain_step(dist::MpiCommunicator& comm, const std::vector<gcl::data::Slice>& slices, int steps, bool surgery) {
    nn::ParameterArena<float> arena;
    nn::PretrainModel<float> model(arena,
                                   {.encoder = unet_options.encoder(), .image_hidden = 128, .image_out = 96,
                                    .pixel_hidden = 64, .pixel_out = 48},
                                   1);
    tr::GclPretrainerOptions o;
    o.steps = steps + 1;
    o.warmup_steps = 0;
    o.sampler.batch_size = global_batch;
    o.objective.mitigation = surgery ? tr::Mitigation::parameters : tr::Mitigation::none;
    if (!surgery) o.objective.filter = tr::PixelFilter::none;
    tr::GclPretrainer<float> pretrainer(model, arena, slices, o);
    dist::DataParallelGcl<float, dist::MpiCommunicator> dp(comm, arena, global_batch);
    pretrainer.set_batch_exchange(&dp.exchange());
    const auto t = gcl::bench::measure_on_ranks(comm, steps, [&] { pretrainer.step(); });
    // The gradient's share of the traffic, by the scheme: reduce-scatter K x P and all-gather P
    // (sharded GradMitigator), or one all-reduce of P.
    const auto P = static_cast<std::uint64_t>(arena.size()), K = static_cast<std::uint64_t>(o.sampler.positives.size());
    const double gradient = surgery ? static_cast<double>(dist::Traffic::ring_share(4 * K * P, comm.size()) +
                                                          dist::Traffic::ring_share(4 * P, comm.size()))
                                    : 2.0 * static_cast<double>(dist::Traffic::ring_share(4 * P, comm.size()));
    report(comm, surgery ? "pretrain-parameters" : "pretrain-none", arena.size(), gradient, t);
}

void finetune_step(dist::MpiCommunicator& comm, const std::vector<gcl::data::Slice>& slices, int steps) {
    nn::ParameterArena<float> arena;
    nn::UNet<float> unet(arena, unet_options, 1);
    tr::SegmentationTrainerOptions o;
    o.steps = steps + 1;
    o.warmup_steps = 0;
    o.batch_size = global_batch;
    tr::SegmentationTrainer<float, nn::UNet<float>> trainer(unet, arena, slices, o);
    dist::DataParallelSegmentation<float, dist::MpiCommunicator> dp(comm, arena, trainer.batch_images());
    trainer.set_batch_exchange(&dp.exchange());
    const auto t = gcl::bench::measure_on_ranks(comm, steps, [&] { trainer.step(); });
    const double gradient = 2.0 * static_cast<double>(dist::Traffic::ring_share(4 * static_cast<std::uint64_t>(arena.size()), comm.size()));
    report(comm, "finetune", arena.size(), gradient, t);
}

}  // namespace

int main(int argc, char** argv) {
    return dist::run_on_ranks(argc, argv, [&](dist::MpiCommunicator& comm) {
        int steps = 3;
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            if (a == "--steps" && i + 1 < argc) {
                steps = std::atoi(argv[++i]);
                gcl::check(steps >= 1, "dist_step", "--steps needs a positive count, got '", argv[i], "'");
            } else {
                gcl::fail("dist_step", "unknown argument '", a, "' (--steps N)");
            }
        }
        const auto slices = gcl::data::phantom_slices({.patients = 16, .slices = 10, .size = 64, .seed = 1, .profile = {}});
        pretrain_step(comm, slices, steps, /*surgery=*/true);
        pretrain_step(comm, slices, steps, /*surgery=*/false);
        finetune_step(comm, slices, steps);
    });
}
