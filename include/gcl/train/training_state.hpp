#pragma once
// A trainer's whole state in one checkpoint, to stop a run and resume it: the parameters and
// buffers, the optimizer state, the steps done, and what identifies the run (its options and data
// set size). Every batch, augmentation and pixel sample of gcl's trainers is indexed by the step,
// so a resumed run repeats the uninterrupted one exactly.
//
//   trainer.save(path);     // GclPretrainer / SegmentationTrainer, after any step
//   trainer.resume(path);   // a trainer built with the same options: steps_done() continues
//
// Entries beside checkpoint_state.hpp's param/, buffer/ and optim/:
//   trainer/kind     text ("gcl_pretrainer", "segmentation_trainer")
//   trainer/step     steps done (int64)
//   trainer/<name>   each identifying option (int64 or float64); a mismatch raises gcl::Error
//
// Data parallel (a trainer with a batch exchange): the ranks hold the same state, rank 0 writes the
// file (atomically) and every rank learns whether it succeeded; on resume rank 0 reads the file and
// sends its bytes to every rank, so only rank 0 needs to see the file (no shared file system) and
// every rank validates the same bytes and raises the same error. The number of ranks may differ
// from the run that wrote it: the state is the single-process state of the global batch.
//
// The arena and the optimizer may live on any device (checkpoint_state.hpp): the file is the same,
// so a run saved on cuda resumes on the cpu and the other way round.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/optim/flat_optimizer.hpp"
#include "gcl/train/checkpoint.hpp"
#include "gcl/train/checkpoint_state.hpp"

namespace gcl::train {

// The ranks of a data-parallel trainer as a checkpoint sees them (the batch exchanges implement it).
class CheckpointRanks {
public:
    virtual ~CheckpointRanks() = default;
    // Whether this rank writes checkpoints (exactly one rank does).
    virtual bool writes_checkpoints() const = 0;
    // In place: every rank receives the writing rank's bytes.
    virtual void share_bytes(std::vector<unsigned char>& bytes) = 0;
};

// What must match between the trainer that saved and the one that resumes.
struct TrainerIdentity {
    std::string kind;
    std::vector<std::pair<std::string, std::int64_t>> integers;
    std::vector<std::pair<std::string, double>> reals;
};

namespace detail {

inline std::string trainer_entry(const std::string& name) { return "trainer/" + name; }

// Rank 0's error text (empty: none) raised on every rank.
inline void raise_shared_error(std::string message, CheckpointRanks& ranks) {
    std::vector<unsigned char> bytes(message.begin(), message.end());
    ranks.share_bytes(bytes);
    if (!bytes.empty()) throw Error("train::checkpoint", "on the writing rank: " + std::string(bytes.begin(), bytes.end()));
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return {};
}

inline void check_identity(const Checkpoint& checkpoint, const TrainerIdentity& identity) {
    constexpr std::string_view op = "train::resume";
    const std::string kind = trainer_entry("kind");
    check(checkpoint.contains(kind), op, checkpoint.source(), " holds no trainer state (no '", kind,
          "'): it was not written by a trainer's save()");
    const std::string saved = checkpoint.text(kind);
    check(saved == identity.kind, op, checkpoint.source(), " holds the state of a ", saved, ", not of a ", identity.kind);
    const auto missing = [&](const std::string& entry) {
        check(checkpoint.contains(entry), op, checkpoint.source(), " has no '", entry, "'");
    };
    for (const auto& [name, value] : identity.integers) {
        const std::string entry = trainer_entry(name);
        missing(entry);
        const auto v = checkpoint.scalar<std::int64_t>(entry);
        check(v == value, op, checkpoint.source(), " was saved with ", name, " = ", v, ", this trainer has ", value,
              ": resume with the options it was saved with");
    }
    for (const auto& [name, value] : identity.reals) {
        const std::string entry = trainer_entry(name);
        missing(entry);
        const auto v = checkpoint.scalar<double>(entry);
        check(v == value, op, checkpoint.source(), " was saved with ", name, " = ", v, ", this trainer has ", value,
              ": resume with the options it was saved with");
    }
}

}  // namespace detail

// Writes the trainer's state to `path` atomically; with ranks, only the writing rank writes and
// every rank returns (or raises its error) once the file is complete.
template <class T, class Rule, class D>
void save_trainer_state(const std::filesystem::path& path, const nn::ParameterArena<T, D>& arena,
                        const optim::FlatOptimizer<T, Rule, D>& optimizer, std::int64_t steps_done,
                        const TrainerIdentity& identity, CheckpointRanks* ranks = nullptr) {
    const auto write = [&] {
        CheckpointWriter writer;
        add_parameters(writer, arena);
        add_optimizer(writer, optimizer, arena);
        writer.add_text(detail::trainer_entry("kind"), identity.kind);
        writer.add_scalar<std::int64_t>(detail::trainer_entry("step"), steps_done);
        for (const auto& [name, value] : identity.integers) writer.add_scalar<std::int64_t>(detail::trainer_entry(name), value);
        for (const auto& [name, value] : identity.reals) writer.add_scalar<double>(detail::trainer_entry(name), value);
        writer.write(path);
    };
    if (!ranks) return write();
    detail::raise_shared_error(ranks->writes_checkpoints() ? detail::error_of(write) : std::string(), *ranks);
}

// Loads a state saved by save_trainer_state into `arena` and `optimizer` and returns the steps
// done. Everything is checked first: on any mismatch gcl::Error, and nothing changes.
template <class T, class Rule, class D>
std::int64_t resume_trainer_state(const std::filesystem::path& path, nn::ParameterArena<T, D>& arena,
                                  optim::FlatOptimizer<T, Rule, D>& optimizer, const TrainerIdentity& identity,
                                  CheckpointRanks* ranks = nullptr) {
    std::vector<unsigned char> bytes;
    if (!ranks) {
        bytes = Checkpoint::read_bytes(path);
    } else {
        detail::raise_shared_error(
            ranks->writes_checkpoints() ? detail::error_of([&] { bytes = Checkpoint::read_bytes(path); }) : std::string(),
            *ranks);
        ranks->share_bytes(bytes);
    }
    const Checkpoint checkpoint = Checkpoint::from_bytes(std::move(bytes), path.string());
    detail::check_identity(checkpoint, identity);
    const auto steps = checkpoint.scalar<std::int64_t>(detail::trainer_entry("step"));
    check(steps >= 0, "train::resume", checkpoint.source(), " has a negative step count ", steps);
    load_training_state(checkpoint, arena, optimizer);
    return steps;
}

}  // namespace gcl::train
