// The host side of asynchronous uploads: StagingRing's double buffer over a counting source and
// a copy the test finishes by hand (standing in for pinned memory and a CUDA event), and
// BatchUploader<cpu>, which moves the batch.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "gcl/core/batch_uploader.hpp"
#include "gcl/core/caching_pool.hpp"
#include "gcl/core/staging_ring.hpp"
#include "support/counting_source.hpp"
#include "support/errors.hpp"

namespace {

using gcl_test::CountingSource;
using StagingPool = gcl::CachingPool<CountingSource>;

// A copy in flight from a staging block; waiting for it finishes it (cudaEventSynchronize).
struct FakeCopy {
    int id = -1;
    bool running = false;
};

// Staging over a counting pool that logs what the ring asks for, in order.
struct FakeStaging {
    using Event = FakeCopy;
    static inline StagingPool* pool = nullptr;
    static inline std::vector<std::string> log;

    static void* allocate(std::size_t bytes) {
        void* block = pool->allocate(bytes);
        log.push_back("allocate " + std::to_string(bytes));
        return block;
    }
    static void release(void* block) noexcept {
        if (block) log.push_back("release");
        pool->release(block);
    }
    static void wait(FakeCopy& copy) {
        if (!copy.running) return;  // never started, or finished already
        log.push_back("wait " + std::to_string(copy.id));
        copy.running = false;
    }
};

using Ring = gcl::StagingRing<FakeStaging>;

struct StagingFixture {
    StagingPool pool;
    StagingFixture() {
        CountingSource::reset();
        FakeStaging::pool = &pool;
        FakeStaging::log.clear();
    }
};

}  // namespace

TEST_CASE("StagingRing: two blocks in turn, each reused only after its copy has finished", "[core][staging]") {
    StagingFixture fixture;
    std::vector<void*> blocks;
    {
        Ring ring;
        FakeCopy* previous = nullptr;
        for (int i = 0; i < 6; ++i) {
            Ring::Slot& slot = ring.acquire(1000);
            INFO("upload " << i);
            CHECK_FALSE(slot.copied.running);         // the block's last copy (i - 2) has finished
            if (previous) CHECK(previous->running);   // the other block's copy (i - 1) still runs
            blocks.push_back(slot.block);
            slot.copied = FakeCopy{i, true};          // the copy from this block starts
            previous = &slot.copied;
        }
        CHECK(blocks[0] != blocks[1]);
        for (std::size_t i = 2; i < blocks.size(); ++i) CHECK(blocks[i] == blocks[i - 2]);
        CHECK(CountingSource::allocations == 2);  // a steady loop asks for no more memory
        CHECK(fixture.pool.stats().bytes_in_use == 2 * 1024);
    }
    // Each block goes back to the pool (not the source) only after its last copy has finished.
    const std::vector<std::string> expected = {"allocate 1000", "allocate 1000", "wait 0", "wait 1", "wait 2",
                                               "wait 3", "wait 4", "release", "wait 5", "release"};
    CHECK(FakeStaging::log == expected);
    CHECK(fixture.pool.stats().bytes_in_use == 0);
    CHECK(fixture.pool.stats().bytes_cached == 2 * 1024);
    CHECK(CountingSource::releases == 0);
}

TEST_CASE("StagingRing: a larger batch replaces its slot's block after the copy, a smaller one reuses it",
          "[core][staging]") {
    StagingFixture fixture;
    Ring ring;
    Ring::Slot& first = ring.acquire(1000);
    void* small_block = first.block;
    first.copied = FakeCopy{0, true};
    ring.acquire(1000).copied = FakeCopy{1, true};

    FakeStaging::log.clear();
    Ring::Slot& grown = ring.acquire(5000);  // the first slot again, too small now
    CHECK(&grown == &first);
    CHECK(grown.capacity == 5000);
    CHECK(grown.block != small_block);
    const std::vector<std::string> replaced = {"wait 0", "allocate 5000", "release"};
    CHECK(FakeStaging::log == replaced);
    CHECK(fixture.pool.stats().bytes_cached == 1024);  // the small block waits in the pool
    void* large_block = grown.block;
    grown.copied = FakeCopy{2, true};

    FakeStaging::log.clear();
    ring.acquire(100).copied = FakeCopy{3, true};  // the second slot: large enough
    CHECK(ring.acquire(100).block == large_block);
    const std::vector<std::string> reused = {"wait 1", "wait 2"};
    CHECK(FakeStaging::log == reused);
    CHECK(CountingSource::allocations == 3);
}

TEST_CASE("StagingRing: a failed allocation leaves the slot as it was", "[core][staging][errors]") {
    StagingFixture fixture;
    Ring ring;
    Ring::Slot& slot = ring.acquire(1000);
    void* block = slot.block;
    slot.copied = FakeCopy{0, true};
    ring.acquire(1000);
    CountingSource::budget = 3 * 1024;  // no room for a block of 4 KiB next to the two
    gcl_test::require_error([&] { ring.acquire(4000); }, {"CachingPool::allocate", "out of test memory", "4000 bytes"});
    CHECK(slot.block == block);
    CHECK(slot.capacity == 1000);
    CHECK_FALSE(slot.copied.running);  // it was waited for before the allocation was tried
    gcl_test::require_error([&] { ring.acquire(0); }, {"StagingRing::acquire", "positive size"});
}

TEST_CASE("BatchUploader<cpu> moves a host tensor and copies a contiguous view", "[core][staging]") {
    gcl::BatchUploader<gcl::cpu> uploader;
    gcl::Tensor<float> batch = gcl::Tensor<float>::from(gcl::Shape{2, 3}, {1, 2, 3, 4, 5, 6});
    const float* storage = batch.data();
    gcl::Tensor<float> moved = uploader.upload(std::move(batch));
    CHECK(moved.data() == storage);  // no copy on the host
    CHECK(moved.shape() == gcl::Shape{2, 3});

    gcl::Tensor<float> copied = uploader.upload(moved.cview());
    CHECK(copied.data() != moved.data());
    CHECK(copied.shape() == moved.shape());
    for (gcl::index_t i = 0; i < moved.numel(); ++i) CHECK(copied.data()[i] == moved.data()[i]);
}

TEST_CASE("BatchUploader<cpu> rejects a strided view as the cuda uploader does", "[core][staging][errors]") {
    gcl::BatchUploader<gcl::cpu> uploader;
    gcl::Tensor<float> batch(gcl::Shape{4, 6});
    gcl_test::require_error([&] { (void)uploader.upload(batch.cview().narrow(1, 1, 3)); },
                            {"BatchUploader: ", "[4, 3]", "not contiguous"});
}

TEST_CASE("BatchUploader<cpu>: start hands the batch to take once", "[core][staging][errors]") {
    gcl::BatchUploader<gcl::cpu> uploader;
    gcl::Tensor<std::int64_t> meta = gcl::Tensor<std::int64_t>::from(gcl::Shape{3, 2}, {0, 1, 2, 3, 4, 5});
    const std::int64_t* storage = meta.data();
    gcl::PendingUpload<std::int64_t, gcl::cpu> pending = uploader.start(std::move(meta));
    gcl::Tensor<std::int64_t> taken = pending.take();
    CHECK(taken.data() == storage);
    CHECK(taken.shape() == gcl::Shape{3, 2});
    gcl_test::require_error([&] { (void)pending.take(); }, {"PendingUpload::take", "taken already"});

    // A pending upload can be replaced by the next one, as a prefetching loop does.
    pending = uploader.start(taken.cview().narrow(0, 1, 1));
    CHECK(pending.take().data()[1] == 3);
}
