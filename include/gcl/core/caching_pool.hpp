#pragma once
// CachingPool<Source>: keeps freed blocks of a device's memory for the next allocation of the
// same size class, so a training step that builds and drops the same temporaries every time
// asks the device for memory only in its first steps (Buffer<T, cuda> allocates through one).
//
//   CachingPool<CudaMemory>& pool = cuda_memory_pool();
//   void* p = pool.allocate(bytes, stream);  // a cached block of the size class, or Source::allocate
//   pool.release(p);                         // back to the cache of its stream, not to the device
//   pool.stats().source_allocations      // how often the device was asked
//   pool.release_cached();               // gives every cached block back to the device
//   pool.release_cached(stream);         // only the blocks cached for `stream` (before it goes)
//
// The pool knows nothing of devices: Source supplies
//   static void* allocate(std::size_t bytes);   // nullptr when the device is out of memory
//   static void release(void* block) noexcept;
//   static int current_device();                // blocks are cached per device
//   static constexpr const char* memory = "...";  // what it allocates, for errors ("device memory")
// Size classes: requests are rounded up to a multiple of 512 bytes below 1 MiB and of 2 MiB
// above, so tensors of nearly equal sizes share blocks (at most 2 MiB, or 512 bytes, of slack
// per block). A block belongs to the stream it was allocated for (an opaque tag, the device's
// stream handle; nullptr by default) and is reused only by allocations for that stream, whose
// work is queued after the previous owner's; a block used on other streams too must have their
// work finished before it is released. When the source is out of memory the pool gives its cached blocks back and asks
// once more before it reports the failure. Thread-safe.
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gcl/core/error.hpp"

namespace gcl {

struct CachingPoolStats {
    std::size_t source_allocations = 0;  // blocks obtained from the source
    std::size_t source_releases = 0;     // blocks given back to it
    std::size_t cache_hits = 0;          // allocations served from the cache
    std::size_t bytes_in_use = 0;        // in blocks handed out and not yet released
    std::size_t bytes_cached = 0;        // in free blocks kept for reuse
};

template <class Source>
class CachingPool {
public:
    static constexpr std::size_t small_granule = 512;
    static constexpr std::size_t large_threshold = std::size_t{1} << 20;  // 1 MiB
    static constexpr std::size_t large_granule = std::size_t{2} << 20;    // 2 MiB

    // The size class of a request of `bytes` (> 0).
    static constexpr std::size_t size_class(std::size_t bytes) {
        const std::size_t granule = bytes < large_threshold ? small_granule : large_granule;
        return (bytes + granule - 1) / granule * granule;
    }

    CachingPool() = default;
    CachingPool(const CachingPool&) = delete;
    CachingPool& operator=(const CachingPool&) = delete;
    ~CachingPool() { release_cached(); }

    // A block of at least `bytes` (> 0) bytes for work on `stream`; its contents are unspecified.
    void* allocate(std::size_t bytes, const void* stream = nullptr) {
        check(bytes > 0, "CachingPool::allocate", "needs a positive size");
        const std::size_t size = size_class(bytes);
        const int device = Source::current_device();
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<void*>& free_blocks = free_[Key{device, stream, size}];
        void* block = nullptr;
        if (!free_blocks.empty()) {
            block = free_blocks.back();
            free_blocks.pop_back();
            stats_.bytes_cached -= size;
            ++stats_.cache_hits;
        } else {
            block = Source::allocate(size);
            if (!block) {  // out of memory: return the cache to the device and try once more
                release_cached_locked();
                block = Source::allocate(size);
            }
            if (!block)
                fail("CachingPool::allocate", "out of ", Source::memory, ": cannot allocate ", bytes, " bytes (",
                     stats_.bytes_in_use, " bytes of it in use by gcl)");
            ++stats_.source_allocations;
        }
        used_.emplace(block, Key{device, stream, size});
        stats_.bytes_in_use += size;
        return block;
    }

    // Returns a block from allocate() to the cache; nullptr is ignored.
    void release(void* block) noexcept {
        if (!block) return;
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = used_.find(block);
        if (it == used_.end()) return;  // not this pool's block: nothing safe to do with it
        const Key key = it->second;
        used_.erase(it);
        stats_.bytes_in_use -= key.size;
        try {
            free_[key].push_back(block);
            stats_.bytes_cached += key.size;
        } catch (...) {  // no memory for the cache's bookkeeping: give the block back instead
            Source::release(block);
            ++stats_.source_releases;
        }
    }

    // Gives every cached (free) block back to the source; blocks in use stay valid.
    void release_cached() noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        release_cached_locked();
    }

    // Gives the cached blocks of `stream` back to the source, on every device: for a stream about
    // to be destroyed, whose handle a later stream may reuse.
    void release_cached(const void* stream) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        release_cached_locked([stream](const Key& key) { return key.stream == stream; });
    }

    CachingPoolStats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return stats_;
    }

private:
    struct Key {
        int device;
        const void* stream;
        std::size_t size;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const noexcept {
            return std::hash<std::size_t>()(k.size) ^ (std::hash<int>()(k.device) << 1) ^
                   (std::hash<const void*>()(k.stream) << 2);
        }
    };

    template <class Which = bool (*)(const Key&)>
    void release_cached_locked(Which which = [](const Key&) { return true; }) noexcept {
        for (auto& [key, blocks] : free_) {
            if (!which(key)) continue;
            for (void* block : blocks) {
                Source::release(block);
                ++stats_.source_releases;
                stats_.bytes_cached -= key.size;
            }
            blocks.clear();
        }
    }

    mutable std::mutex mutex_;
    std::unordered_map<Key, std::vector<void*>, KeyHash> free_;
    std::map<void*, Key> used_;  // the blocks handed out: their device, stream and size class
    CachingPoolStats stats_;
};

}  // namespace gcl
