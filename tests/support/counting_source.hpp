#pragma once
// CountingSource: a CachingPool source of host memory that counts its calls and has a byte
// budget, standing in for a device (or for pinned host memory) in the CPU tests.
#include <cstddef>
#include <cstdlib>
#include <utility>
#include <vector>

namespace gcl_test {

struct CountingSource {
    static constexpr const char* memory = "test memory";
    static inline std::size_t allocations = 0, releases = 0, live_bytes = 0, budget = ~std::size_t{0};
    static inline int device = 0;
    static inline std::vector<std::pair<void*, std::size_t>> live;

    static void reset() {
        allocations = releases = live_bytes = 0;
        budget = ~std::size_t{0};
        device = 0;
        live.clear();
    }
    static void* allocate(std::size_t bytes) {
        if (live_bytes + bytes > budget) return nullptr;
        void* p = std::malloc(bytes);
        ++allocations;
        live_bytes += bytes;
        live.emplace_back(p, bytes);
        return p;
    }
    static void release(void* block) noexcept {
        for (auto it = live.begin(); it != live.end(); ++it)
            if (it->first == block) {
                live_bytes -= it->second;
                live.erase(it);
                break;
            }
        std::free(block);
        ++releases;
    }
    static int current_device() { return device; }
};

}  // namespace gcl_test
