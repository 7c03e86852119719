// Data-parallel GCL pre-training under MPI: every rank trains on its share of each global batch,
// the contrast sees the whole batch, batch norm is synchronised, and rank 0 writes the checkpoint.
// The parameters after each step are those of one process training on the whole batch.
//
//   mpirun -np 2 ./dist_pretrain [steps] [checkpoint path] [--stop-after N] [--resume]
//   mpirun -np 4 --hostfile hosts ./dist_pretrain 50 pretrained.gclckpt     (several machines)
//
// The checkpoint holds the whole training state: --stop-after N saves it after N steps and stops;
// --resume continues from it, on any number of ranks (the global batch of 16 allows up to 16),
// exactly as the uninterrupted run would have:
//   mpirun -np 2 ./dist_pretrain 10 state.gclckpt --stop-after 4
//   mpirun -np 1 ./dist_pretrain 10 state.gclckpt --resume
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gcl/data/phantom.hpp"
#include "gcl/dist/data_parallel_gcl.hpp"
#include "gcl/dist/mpi_communicator.hpp"
#include "gcl/nn/pretrain_model.hpp"
#include "gcl/train/gcl_pretrainer.hpp"

namespace dist = gcl::dist;
namespace nn = gcl::nn;
namespace tr = gcl::train;

int main(int argc, char** argv) {
    return dist::run_on_ranks(argc, argv, [&](dist::MpiCommunicator& comm) {
        const long steps = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 10;
        const std::string checkpoint = argc > 2 ? argv[2] : "dist_pretrain.gclckpt";
        gcl::check(steps >= 1, "dist_pretrain", "steps must be at least 1, got '", argc > 1 ? argv[1] : "", "'");
        long stop_after = steps;
        bool resume = false;
        for (int i = 3; i < argc; ++i) {
            const std::string_view flag = argv[i];
            if (flag == "--resume") {
                resume = true;
            } else if (flag == "--stop-after" && i + 1 < argc) {
                stop_after = std::strtol(argv[++i], nullptr, 10);
                gcl::check(stop_after >= 1, "dist_pretrain", "--stop-after needs a positive step count, got '", argv[i], "'");
            } else {
                gcl::fail("dist_pretrain", "unknown argument '", flag, "' (expected --stop-after N or --resume)");
            }
        }

        // Every rank reads (here: generates) the same data set; the sampler picks the global batch.
        const auto slices = gcl::data::phantom_slices({.patients = 8, .slices = 8, .size = 32, .seed = 1, .profile = {}});
        nn::ParameterArena<float> arena;
        nn::PretrainModel<float> model(arena,
                                       {.encoder = {.in_channels = 1, .depth = 3, .base_width = 8}, .image_hidden = 32,
                                        .image_out = 24, .pixel_hidden = 32, .pixel_out = 24},
                                       /*seed=*/1);
        tr::GclPretrainerOptions options;
        options.steps = steps;
        options.warmup_steps = steps > 2 ? 2 : 0;
        options.sampler.batch_size = 16;  // the global batch, whatever the number of ranks
        options.objective.pixel_samples = 8;
        tr::GclPretrainer<float> pretrainer(model, arena, slices, options);
        // Rank 0's initial parameters everywhere, the exchange of the embeddings, synchronised batch norm.
        dist::DataParallelGcl<float, dist::MpiCommunicator> data_parallel(comm, arena, options.sampler.batch_size);
        pretrainer.set_batch_exchange(&data_parallel.exchange());

        if (resume) pretrainer.resume(checkpoint);  // every rank: rank 0 reads the file and sends it

        if (comm.rank() == 0)
            std::printf("%d rank(s), global batch %lld, %lld image(s) on rank 0, from step %lld\n", comm.size(),
                        static_cast<long long>(options.sampler.batch_size),
                        static_cast<long long>(data_parallel.exchange().own_images()),
                        static_cast<long long>(pretrainer.steps_done()));
        while (!pretrainer.done() && pretrainer.steps_done() < stop_after) {
            const tr::GclStepReport r = pretrainer.step();  // the global losses, the same on every rank
            if (comm.rank() == 0) {
                std::printf("step %3lld  loss %.4f  image", static_cast<long long>(pretrainer.steps_done()), r.total);
                for (const double l : r.image_losses) std::printf(" %.4f", l);
                std::printf("\n");
            }
        }
        // The ranks hold the same state; rank 0 writes it, atomically, and every rank returns once it is written.
        pretrainer.save(checkpoint);
        if (comm.rank() == 0)
            std::printf("checkpoint after step %lld: %s\n", static_cast<long long>(pretrainer.steps_done()),
                        checkpoint.c_str());
    });
}
