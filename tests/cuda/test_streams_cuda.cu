// The current stream (core/stream.hpp) on cuda: StreamGuard's scope, buffers that belong to the
// stream they were made on, a U-Net's forward pass captured into a CUDA graph on a blocking
// stream (which fails if any of its work goes to the legacy default stream or waits on the
// host), and GCL pre-training steps on a non-blocking stream equal to the default stream's.
// Skipped (exit 77) without a GPU.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <thread>
#include <utility>

#include "gcl/cuda.cuh"
#include "gcl/data/phantom.hpp"
#include "gcl/train/gcl_pretrainer.hpp"
#include "support/cuda_parity.hpp"
#include "support/tensors.hpp"

using gcl::Shape;
using gcl::Tensor;
namespace nn = gcl::nn;
namespace tr = gcl::train;
using CudaStream = gcl::Stream<gcl::cuda>;

namespace {

// A stream made for one test, destroyed after its work with its cached blocks given back.
class OwnedStream {
public:
    explicit OwnedStream(unsigned flags) { GCL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, flags)); }
    ~OwnedStream() {
        try {
            gcl::cuda_release_stream_memory(stream_);
        } catch (const gcl::Error& e) {  // a destructor must not throw; the test has failed already
            std::fprintf(stderr, "OwnedStream: %s\n", e.what());
        }
        cudaStreamDestroy(stream_);
    }
    OwnedStream(const OwnedStream&) = delete;
    OwnedStream& operator=(const OwnedStream&) = delete;
    CudaStream get() const { return stream_; }

private:
    cudaStream_t stream_ = nullptr;
};

}  // namespace

TEST_CASE("StreamGuard sets the calling thread's current stream for its scope", "[cuda][stream]") {
    OwnedStream a(cudaStreamNonBlocking), b(cudaStreamNonBlocking);
    CHECK(gcl::current_stream<gcl::cuda>().handle == nullptr);  // the legacy default stream
    {
        const gcl::StreamGuard<gcl::cuda> on_a(a.get());
        CHECK(gcl::current_stream<gcl::cuda>().handle == a.get().handle);
        {
            const gcl::StreamGuard<gcl::cuda> on_b(b.get());
            CHECK(gcl::current_stream<gcl::cuda>().handle == b.get().handle);
        }
        CHECK(gcl::current_stream<gcl::cuda>().handle == a.get().handle);
        cudaStream_t other_thread = a.get().handle;
        std::thread([&] { other_thread = gcl::current_stream<gcl::cuda>().handle; }).join();
        CHECK(other_thread == nullptr);
    }
    CHECK(gcl::current_stream<gcl::cuda>().handle == nullptr);
}

TEST_CASE("a device buffer belongs to the stream it was made on; its block is reused only there",
          "[cuda][stream][pool]") {
    OwnedStream a(cudaStreamNonBlocking), b(cudaStreamNonBlocking);
    gcl::cuda_release_cached_memory();
    const void* block = nullptr;
    {
        const gcl::StreamGuard<gcl::cuda> on_a(a.get());
        const Tensor<float, gcl::cuda> t(Shape{1000});
        CHECK(t.stream().handle == a.get().handle);
        block = t.data();
        CHECK(gcl::to_host(t).data()[999] == 0.0f);  // zeroed on a; to_host waits for a
    }
    {
        const gcl::StreamGuard<gcl::cuda> on_b(b.get());
        const Tensor<float, gcl::cuda> t(Shape{1000});
        CHECK(t.data() != block);
    }
    const Tensor<float, gcl::cuda> on_default(Shape{1000});
    CHECK(on_default.data() != block);
    CHECK(on_default.stream().handle == nullptr);
    const gcl::StreamGuard<gcl::cuda> on_a(a.get());
    const Tensor<float, gcl::cuda> again(Shape{1000});
    CHECK(again.data() == block);
}

TEST_CASE("cuda_release_stream_memory gives back the stream's scratch areas and cached blocks", "[cuda][stream][pool]") {
    OwnedStream a(cudaStreamNonBlocking);
    const int device = gcl::cuda_detail::current_device();
    const std::pair<int, cudaStream_t> key{device, a.get().handle};
    gcl::Rng rng(8);
    const Tensor<float> host = gcl_test::random<float>({4096}, rng);
    {
        const gcl::StreamGuard<gcl::cuda> on_a(a.get());
        const Tensor<float, gcl::cuda> t = gcl::to_device(host);
        CHECK(static_cast<double>(gcl::ops::sum(t)) ==
              Approx(static_cast<double>(gcl::ops::sum(host))).epsilon(1e-5).margin(1e-5));  // partials in scratch
    }
    CHECK(gcl::cuda_detail::scratch_areas<double>().count(key) == 1);
    const std::size_t cached = gcl::cuda_memory_stats().bytes_cached;
    gcl::cuda_release_stream_memory(a.get());
    CHECK(gcl::cuda_detail::scratch_areas<double>().count(key) == 0);
    CHECK(gcl::cuda_memory_stats().bytes_cached < cached);  // t's block and the scratch block
}

TEST_CASE("a U-Net's forward pass queues all its work on the current stream", "[cuda][stream][graph]") {
    // A blocking stream: work on the legacy default stream while it is captured, or a host wait,
    // invalidates the capture.
    OwnedStream s(cudaStreamDefault);
    nn::ParameterArena<float, gcl::cuda> arena;
    nn::UNet<float, gcl::cuda> unet(arena, {.in_channels = 1, .classes = 3, .depth = 3, .base_width = 8}, 4);
    gcl::Rng rng(5);
    Tensor<float, gcl::cuda> x = gcl::to_device(gcl_test::random<float>({2, 1, 32, 32}, rng));
    const gcl::StreamGuard<gcl::cuda> on_s(s.get());
    // Warm: convolution algorithms found, outputs allocated, the pool's blocks cached for s.
    for (int i = 0; i < 2; ++i) unet.forward(x.cview());
    s.get().synchronize();

    CHECK_FALSE(s.get().capturing());
    REQUIRE(cudaStreamBeginCapture(s.get(), cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    std::string error;
    bool capturing = false;
    gcl::ConstView<float, gcl::cuda> logits;
    try {
        capturing = s.get().capturing();
        logits = unet.forward(x.cview());  // its input check, which waits for the device, is left out
    } catch (const gcl::Error& e) {
        error = e.what();
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(s.get(), &graph);
    cudaGetLastError();  // clear a capture error, reported below
    INFO(error);
    CHECK(error.empty());
    INFO(cudaGetErrorString(ended));
    REQUIRE(ended == cudaSuccess);
    std::size_t nodes = 0;
    REQUIRE(cudaGraphGetNodes(graph, nullptr, &nodes) == cudaSuccess);
    std::printf("U-Net forward captured on one stream: %zu graph nodes\n", nodes);
    CHECK(capturing);
    CHECK(nodes > 20);

    // A replay on new input contents gives the logits a direct forward pass gives.
    const Tensor<float> new_input = gcl_test::random<float>({2, 1, 32, 32}, rng);
    gcl::ops::copy(gcl::to_device(new_input).cview(), x.view());  // into the memory the graph reads
    cudaGraphExec_t replay = nullptr;
    REQUIRE(cudaGraphInstantiate(&replay, graph, 0) == cudaSuccess);
    CHECK(cudaGraphLaunch(replay, s.get()) == cudaSuccess);
    const Tensor<float> replayed = gcl::to_host(logits);
    const Tensor<float> direct = gcl::to_host(unet.forward(x.cview()));
    CHECK(gcl_test::same_bits(direct, replayed));
    cudaGraphExecDestroy(replay);
    cudaGraphDestroy(graph);
}

TEST_CASE("GCL pre-training steps on a non-blocking stream equal the default stream's", "[cuda][stream][train]") {
    const auto slices = gcl::data::phantom_slices({.patients = 4, .slices = 8, .size = 32, .seed = 6, .profile = {}});
    const nn::PretrainModelOptions model_options{.encoder = {.in_channels = 1, .depth = 2, .base_width = 4},
                                                 .image_hidden = 8,
                                                 .image_out = 6,
                                                 .pixel_hidden = 8,
                                                 .pixel_out = 6};
    const tr::GclPretrainerOptions options{.steps = 3,
                                           .warmup_steps = 1,
                                           .sampler = {.batch_size = 6, .seed = 1},
                                           .objective = {.pixel_samples = 4}};
    const auto run = [&] {
        nn::ParameterArena<float, gcl::cuda> arena;
        nn::PretrainModel<float, gcl::cuda> model(arena, model_options, 9);
        tr::GclPretrainer<float, gcl::cuda> trainer(model, arena, slices, options);
        while (!trainer.done()) trainer.step();
        return gcl::ops::device_to_host(arena.flat_values());
    };
    const Tensor<float> on_default = run();
    OwnedStream s(cudaStreamNonBlocking);
    Tensor<float> on_s;
    {
        const gcl::StreamGuard<gcl::cuda> on_stream(s.get());
        on_s = run();
    }
    const double gap = gcl_test::relative_gap(on_default, on_s);
    std::printf("pre-training parameters, non-blocking stream vs default stream: largest difference %.3g\n", gap);
    CHECK(gap <= 1e-6);
}
