#pragma once
// The operator-object shell GradMitigator and BatchedGradMitigator share (CUTLASS's shape): the
// options, the argument checks, the workspace size, the checks at the start of run(), and
// operator(), which runs with workspace of its own and waits. Each mitigator Op adds only what is
// its own:
//   static constexpr std::string_view name;                  // names the operator in messages
//   static std::string why_not(const Arguments&);            // empty when the arguments can be run
//   static std::size_t workspace_bytes(const Arguments&);    // device workspace run() needs
//   MitigateReport run(const Arguments&, void* workspace, Stream<Device>) const;
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/stream.hpp"
#include "gcl/surgery/mitigate_options.hpp"

namespace gcl::surgery::detail {

// Workspace that operator() allocates for itself, at least `bytes` and aligned for double: host
// memory on the cpu; Workspace<cuda> (surgery/cuda/detail/launch.cuh) allocates device memory
// that `stream` may use at once.
template <class Device>
struct Workspace;

template <>
struct Workspace<cpu> {
    static std::vector<double> allocate(std::size_t bytes, Stream<cpu>) {
        return std::vector<double>(bytes / sizeof(double) + 1);
    }
};

template <class Op, class Arguments, class T, class Device>
class MitigatorOperator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "the mitigators work on float or double");

public:
    explicit MitigatorOperator(MitigateOptions options) : options_(options) {}
    const MitigateOptions& options() const { return options_; }

    static bool can_implement(const Arguments& args) { return Op::why_not(args).empty(); }
    static void check(const Arguments& args) {
        const std::string reason = Op::why_not(args);
        if (!reason.empty()) fail(Op::name, reason);
    }
    // Bytes of workspace (in the device's memory) `run` needs.
    static std::size_t workspace_size(const Arguments& args) {
        check(args);
        return Op::workspace_bytes(args);
    }

    // Runs with workspace it allocates itself; returns when the output is written.
    MitigateReport operator()(const Arguments& args, Stream<Device> stream = current_stream<Device>()) const {
        auto workspace = Workspace<Device>::allocate(workspace_size(args), stream);
        MitigateReport report = static_cast<const Op&>(*this).run(args, workspace.data(), stream);
        stream.synchronize();
        return report;
    }

protected:
    // The checks at the start of run(): the arguments, and the workspace where one is needed.
    static void check_run(const Arguments& args, const void* workspace) {
        check(args);
        gcl::check(workspace != nullptr || Op::workspace_bytes(args) == 0, Op::name, "run needs workspace_size(args) bytes of ",
                   Device::name, " workspace");
    }

    MitigateOptions options_;
};

}  // namespace gcl::surgery::detail
