#pragma once
// StagingRing<Staging>: the host staging blocks of an asynchronous uploader, used in turn (a
// double buffer). An upload copies its batch into the next block and starts a copy from there to
// the device, marked by the slot's event; the block is handed out again only after that copy has
// finished, so the host fills one block while the other one may still be read by a copy.
//
//   StagingRing<Staging> ring;
//   auto& slot = ring.acquire(bytes);        // waits for this slot's previous copy, grows its block
//   std::memcpy(slot.block, host, bytes);    // then start the copy and record slot.copied after it
//
// The ring knows nothing of devices: Staging supplies
//   using Event = ...;                           // default-constructible; marks "the copy finished"
//   static void* allocate(std::size_t bytes);    // a block of at least `bytes` (throws on failure)
//   static void release(void* block) noexcept;
//   static void wait(Event& copied);             // returns once the marked copy has finished
// (backend/cuda/batch_uploader.cuh: pinned blocks from cuda_pinned_pool() and CUDA events; the
// CPU tests use a source that counts its calls and an event the test finishes by hand.)
// Not thread-safe: one ring belongs to one uploader, used by one host thread.
#include <array>
#include <cstddef>

#include "gcl/core/error.hpp"

namespace gcl {

template <class Staging>
class StagingRing {
public:
    using Event = typename Staging::Event;
    static constexpr std::size_t slot_count = 2;

    struct Slot {
        void* block = nullptr;
        std::size_t capacity = 0;  // bytes
        Event copied;              // recorded after the copy that reads `block`
    };

    StagingRing() = default;
    StagingRing(const StagingRing&) = delete;
    StagingRing& operator=(const StagingRing&) = delete;
    // A block may still be read by a copy: wait for each one before giving it back.
    ~StagingRing() {
        for (Slot& slot : slots_) {
            try {
                Staging::wait(slot.copied);
            } catch (...) {  // the device failed; its copy no longer runs
            }
            Staging::release(slot.block);
        }
    }

    // The next slot in turn, holding a block of at least `bytes` (> 0) that no copy reads any
    // more: waits for the slot's previous copy before the block is reused or replaced.
    Slot& acquire(std::size_t bytes) {
        check(bytes > 0, "StagingRing::acquire", "needs a positive size");
        Slot& slot = slots_[next_];
        Staging::wait(slot.copied);
        if (slot.capacity < bytes) {
            void* grown = Staging::allocate(bytes);
            Staging::release(slot.block);
            slot.block = grown;
            slot.capacity = bytes;
        }
        next_ = (next_ + 1) % slot_count;
        return slot;
    }

private:
    std::array<Slot, slot_count> slots_{};
    std::size_t next_ = 0;
};

}  // namespace gcl
