#pragma once
// dist::MpiCommunicator: the communicator contract (communicator.hpp) over MPI, for host
// buffers; dist::MpiSession owns MPI's initialisation, and dist::run_on_ranks turns an error on
// one rank into a clear message and the end of the whole job instead of a hang.
//
//   int main(int argc, char** argv) {
//       return gcl::dist::run_on_ranks(argc, argv, [](gcl::dist::MpiCommunicator& comm) {
//           ... comm.all_reduce_sum(grad.data(), grad.numel()); ...
//       });
//   }
//
// Needs an MPI implementation (Debian: libopenmpi-dev); the CMake target gcl::mpi brings it.
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/shape.hpp"
#include "gcl/dist/communicator.hpp"

namespace gcl::dist {

namespace detail {
template <class T>
MPI_Datatype mpi_type() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
    else if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return MPI_UINT8_T;
    else static_assert(sizeof(T) == 0, "MpiCommunicator moves float, double, int64, int32 or uint8");
}

inline void check_mpi(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    fail("dist::mpi", call, " failed: ", std::string(text, static_cast<std::size_t>(length)));
}

inline int mpi_count(index_t n, const char* call) {
    check(n >= 0 && n <= std::numeric_limits<int>::max(), "dist::mpi", call, ": ", n,
          " elements do not fit MPI's int count (split the buffer)");
    return static_cast<int>(n);
}
}  // namespace detail

// MPI_Init_thread / MPI_Finalize for the lifetime of the object. gcl calls MPI from one thread
// only (OpenMP threads never do), so MPI_THREAD_FUNNELED suffices.
class MpiSession {
public:
    MpiSession(int& argc, char**& argv) {
        int initialised = 0;
        MPI_Initialized(&initialised);
        if (!initialised) {
            int provided = 0;
            detail::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
            owner_ = true;
        }
    }
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;
    ~MpiSession() {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (owner_ && !finalised) MPI_Finalize();
    }

private:
    bool owner_ = false;
};

class MpiCommunicator {
public:
    using device_type = cpu;  // host buffers

    // A private duplicate of `comm` (MPI_COMM_WORLD by default) whose errors are returned as
    // codes, so every failing call becomes a gcl::Error naming the call.
    explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD) {
        detail::check_mpi(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
        adopt();
    }
    MpiCommunicator(const MpiCommunicator&) = delete;
    MpiCommunicator& operator=(const MpiCommunicator&) = delete;
    ~MpiCommunicator() {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (!finalised && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    }

    int rank() const { return rank_; }
    int size() const { return size_; }
    MPI_Comm native() const { return comm_; }
    const Traffic& traffic() const { return traffic_; }

    template <class T>
    void all_reduce_sum(T* data, index_t n) {
        const int count = detail::mpi_count(n, "MPI_Allreduce");
        detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, count, detail::mpi_type<T>(), MPI_SUM, comm_), "MPI_Allreduce");
        traffic_.add(2 * Traffic::ring_share(static_cast<std::uint64_t>(n) * sizeof(T), size_));
    }

    template <class T>
    void reduce_scatter_sum(const T* in, T* out, std::span<const index_t> counts) {
        const std::vector<int> c = int_counts(counts, "MPI_Reduce_scatter");
        std::uint64_t total = 0;
        for (const int v : c) total += static_cast<std::uint64_t>(v);
        detail::check_mpi(MPI_Reduce_scatter(in, out, c.data(), detail::mpi_type<T>(), MPI_SUM, comm_), "MPI_Reduce_scatter");
        traffic_.add(Traffic::ring_share(total * sizeof(T), size_));
    }

    template <class T>
    void all_gather(const T* in, T* out, std::span<const index_t> counts) {
        const std::vector<int> c = int_counts(counts, "MPI_Allgatherv");
        std::vector<int> displacements(c.size());
        std::uint64_t total = 0;
        for (std::size_t r = 0; r < c.size(); ++r) {
            check(total <= static_cast<std::uint64_t>(std::numeric_limits<int>::max()), "dist::mpi",
                  "MPI_Allgatherv: the gathered buffer does not fit MPI's int displacements");
            displacements[r] = static_cast<int>(total);
            total += static_cast<std::uint64_t>(c[r]);
        }
        detail::check_mpi(MPI_Allgatherv(in, c[static_cast<std::size_t>(rank_)], detail::mpi_type<T>(), out, c.data(),
                                         displacements.data(), detail::mpi_type<T>(), comm_),
                          "MPI_Allgatherv");
        traffic_.add(Traffic::ring_share(total * sizeof(T), size_));
    }

    template <class T>
    void broadcast(T* data, index_t n, int root) {
        check(root >= 0 && root < size_, "dist::mpi", "broadcast root ", root, " is not a rank of ", size_);
        const int count = detail::mpi_count(n, "MPI_Bcast");
        detail::check_mpi(MPI_Bcast(data, count, detail::mpi_type<T>(), root, comm_), "MPI_Bcast");
        traffic_.add(rank_ == root && size_ > 1 ? static_cast<std::uint64_t>(n) * sizeof(T) : 0);
    }

    void barrier() { detail::check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

    // The ranks that pass the same color, in a communicator of their own ranked by key (ties by
    // rank here): MPI_Comm_split. Every rank of this communicator must call it.
    MpiCommunicator split(int color, int key = 0) const {
        check(color >= 0, "dist::mpi", "MPI_Comm_split: the color must be non-negative, got ", color);
        MPI_Comm part = MPI_COMM_NULL;
        detail::check_mpi(MPI_Comm_split(comm_, color, key, &part), "MPI_Comm_split");
        return MpiCommunicator(Adopt{}, part);
    }

    // The ranks of this communicator on this rank's node (those that can share memory), ranked
    // as here: MPI_Comm_split_type. Every rank must call it. A rank's place among them picks its
    // local GPU.
    MpiCommunicator split_node() const {
        MPI_Comm node = MPI_COMM_NULL;
        detail::check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                          "MPI_Comm_split_type");
        return MpiCommunicator(Adopt{}, node);
    }

    // Ends every rank of the job: the way out of an error on one rank while the others may be
    // waiting in a collective.
    [[noreturn]] void abort(int code) const {
        MPI_Abort(comm_, code);
        std::_Exit(code);
    }

private:
    struct Adopt {};
    MpiCommunicator(Adopt, MPI_Comm comm) : comm_(comm) { adopt(); }
    void adopt() {
        detail::check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        detail::check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        detail::check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }

    std::vector<int> int_counts(std::span<const index_t> counts, const char* call) const {
        check(static_cast<int>(counts.size()) == size_, "dist::mpi", call, ": ", counts.size(), " counts for ", size_,
              " ranks");
        std::vector<int> c(counts.size());
        for (std::size_t r = 0; r < counts.size(); ++r) c[r] = detail::mpi_count(counts[r], call);
        return c;
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0;
    int size_ = 1;
    Traffic traffic_;
};

static_assert(CommunicatorFor<MpiCommunicator, float> && CommunicatorFor<MpiCommunicator, double>);

// Runs fn(comm) on every rank of an MPI job and returns its exit code (0 when fn returns
// normally, or fn's int). An exception on any rank prints
//   gcl::dist: rank r of S failed: <what>
// to stderr and aborts the whole job with exit code 1, so no rank waits forever for it.
template <class F>
int run_on_ranks(int& argc, char**& argv, F&& fn) {
    MpiSession session(argc, argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    try {
        MpiCommunicator comm;
        if constexpr (std::is_same_v<std::invoke_result_t<F, MpiCommunicator&>, void>) {
            fn(comm);
            return 0;
        } else {
            return static_cast<int>(fn(comm));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gcl::dist: rank %d of %d failed: %s\n", rank, size, e.what());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 1;
}

}  // namespace gcl::dist
