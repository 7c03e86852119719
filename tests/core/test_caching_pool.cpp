// CachingPool, the device-memory cache behind Buffer<T, cuda>, over a host source that counts
// its calls and can run out of memory: reuse by size class, per device, the out-of-memory
// retry, release of the cache, and concurrent use.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <initializer_list>
#include <set>
#include <thread>
#include <vector>

#include "gcl/core/caching_pool.hpp"
#include "support/counting_source.hpp"

namespace {

using gcl_test::CountingSource;
using Pool = gcl::CachingPool<CountingSource>;

}  // namespace

TEST_CASE("CachingPool: size classes of 512 bytes below 1 MiB and of 2 MiB above", "[core][pool]") {
    STATIC_REQUIRE(Pool::size_class(1) == 512);
    STATIC_REQUIRE(Pool::size_class(512) == 512);
    STATIC_REQUIRE(Pool::size_class(513) == 1024);
    STATIC_REQUIRE(Pool::size_class((1 << 20) - 1) == (1 << 20));
    STATIC_REQUIRE(Pool::size_class(1 << 20) == (2 << 20));
    STATIC_REQUIRE(Pool::size_class((2 << 20) + 1) == (4 << 20));
}

TEST_CASE("CachingPool: a steady loop of the same temporaries asks the source only once per block",
          "[core][pool]") {
    CountingSource::reset();
    {
        Pool pool;
        const std::vector<std::size_t> step = {100, 4000, 4000, 3 << 20, 700};  // one step's temporaries
        for (int iteration = 0; iteration < 5; ++iteration) {
            std::vector<void*> blocks;
            for (std::size_t bytes : step) blocks.push_back(pool.allocate(bytes));
            REQUIRE(std::set<void*>(blocks.begin(), blocks.end()).size() == blocks.size());  // distinct
            for (void* b : blocks) pool.release(b);
        }
        const gcl::CachingPoolStats s = pool.stats();
        CHECK(s.source_allocations == step.size());
        CHECK(CountingSource::allocations == step.size());
        CHECK(s.cache_hits == 4 * step.size());
        CHECK(s.bytes_in_use == 0);
        CHECK(s.bytes_cached == 512 + 2 * 4096 + (4 << 20) + 1024);
        CHECK(CountingSource::releases == 0);

        // A request of another size class does not take a cached block.
        void* other = pool.allocate(8192);
        CHECK(pool.stats().source_allocations == step.size() + 1);
        pool.release(other);

        pool.release_cached();
        CHECK(CountingSource::releases == step.size() + 1);
        CHECK(pool.stats().bytes_cached == 0);
        CHECK(CountingSource::live.empty());
    }
}

TEST_CASE("CachingPool: blocks are cached per device", "[core][pool]") {
    CountingSource::reset();
    Pool pool;
    void* on0 = pool.allocate(1000);
    pool.release(on0);
    CountingSource::device = 1;
    void* on1 = pool.allocate(1000);  // device 1 has nothing cached
    CHECK(pool.stats().source_allocations == 2);
    CountingSource::device = 0;
    void* again0 = pool.allocate(1000);
    CHECK(again0 == on0);
    pool.release(on1);
    pool.release(again0);
}

TEST_CASE("CachingPool: blocks are cached per stream; release_cached frees every stream's", "[core][pool][stream]") {
    CountingSource::reset();
    Pool pool;
    int stream_a = 0, stream_b = 0;  // two stream handles (only their addresses matter)
    void* on_default = pool.allocate(1000);
    void* on_a = pool.allocate(1000, &stream_a);
    REQUIRE(on_a != on_default);
    pool.release(on_default);
    pool.release(on_a);
    // Each stream takes back its own block, never the other's: its work is queued after that
    // block's previous owner's.
    void* again_a = pool.allocate(1000, &stream_a);
    CHECK(again_a == on_a);
    void* on_b = pool.allocate(1000, &stream_b);  // stream b has nothing cached
    CHECK(on_b != on_a);
    CHECK(on_b != on_default);
    void* again_default = pool.allocate(1000);
    CHECK(again_default == on_default);
    CHECK(pool.stats().source_allocations == 3);
    CHECK(pool.stats().cache_hits == 2);
    // Released by another thread than the allocating one, a block still goes to its stream.
    std::thread([&] { pool.release(again_a); }).join();
    void* second_b = pool.allocate(1000, &stream_b);
    CHECK(second_b != again_a);
    void* third_a = pool.allocate(1000, &stream_a);
    CHECK(third_a == again_a);
    CHECK(pool.stats().bytes_in_use == 4 * Pool::size_class(1000));
    for (void* block : {third_a, on_b, second_b, again_default}) pool.release(block);
    CHECK(pool.stats().bytes_cached == 4 * Pool::size_class(1000));
    // Stream b is going: its two blocks go back to the source, the others stay cached.
    pool.release_cached(&stream_b);
    CHECK(CountingSource::releases == 2);
    CHECK(pool.stats().bytes_cached == 2 * Pool::size_class(1000));
    CHECK(pool.allocate(1000, &stream_a) == third_a);
    pool.release(third_a);
    pool.release_cached();
    CHECK(pool.stats().bytes_cached == 0);
    CHECK(CountingSource::live.empty());
}

TEST_CASE("CachingPool: out of memory, the cache goes back to the source and the request is retried",
          "[core][pool][errors]") {
    CountingSource::reset();
    Pool pool;
    CountingSource::budget = 3 * 4096;
    void* a = pool.allocate(4096);
    void* b = pool.allocate(4096);
    pool.release(a);
    pool.release(b);
    // 8192 bytes fit only once the two cached blocks are released.
    void* big = pool.allocate(8192);
    CHECK(big != nullptr);
    CHECK(CountingSource::releases == 2);
    CHECK(pool.stats().bytes_cached == 0);
    CHECK(pool.stats().bytes_in_use == 8192);

    // Nothing left to release: a clear error naming the request and what gcl holds.
    try {
        (void)pool.allocate(8192);
        FAIL("allocate should have thrown");
    } catch (const gcl::Error& e) {
        const std::string what = e.what();
        CHECK_THAT(what, Catch::Contains("CachingPool::allocate"));
        CHECK_THAT(what, Catch::Contains("out of test memory"));
        CHECK_THAT(what, Catch::Contains("8192 bytes"));
    }
    CHECK(pool.stats().bytes_in_use == 8192);  // the failed request changed nothing
    CHECK_THROWS_AS(pool.allocate(0), gcl::Error);
    pool.release(big);
    pool.release(nullptr);  // ignored
}

TEST_CASE("CachingPool: concurrent allocations and releases keep the books", "[core][pool]") {
    CountingSource::reset();
    Pool pool;
    // The pool calls its source under its own lock, so CountingSource needs none.
    const auto work = [&](std::size_t base) {
        for (int i = 0; i < 200; ++i) {
            void* p = pool.allocate(base + static_cast<std::size_t>(i % 3) * 512);
            pool.release(p);
        }
    };
    std::thread t1(work, 512), t2(work, 4096);
    t1.join();
    t2.join();
    const gcl::CachingPoolStats s = pool.stats();
    CHECK(s.bytes_in_use == 0);
    CHECK(s.source_allocations + s.cache_hits == 400);
    CHECK(s.source_allocations <= 6);  // three size classes per thread at most
}
