#pragma once
// nn::Scope: where a layer registers its parameters, under which name, and how they are seeded.
//
//   nn::ParameterArena<float> arena;
//   nn::Scope<float> root(arena, /*seed=*/7);
//   auto enc = root.child("encoder");                      // names start with "encoder."
//   auto conv = enc.child("block0").child("conv1");        // "encoder.block0.conv1"
//   auto w = conv.parameter("weight", {32, 1, 3, 3}, nn::Init::kaiming_normal(0.01));
//   // -> arena parameter "encoder.block0.conv1.weight", initialised from stream hash(name) of seed 7
//
// A parameter's initial values come from Rng(seed, name_stream(full name)): they depend only on
// the seed, the name, the shape and the rule. Two models built with the same seed (a pre-training
// model and the U-Net it initialises) therefore start from identical weights wherever their names
// agree, whatever else they contain.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "gcl/core/error.hpp"
#include "gcl/core/random.hpp"
#include "gcl/nn/init.hpp"
#include "gcl/nn/parameter_arena.hpp"
#include "gcl/ops/elementwise.hpp"

namespace gcl::nn {

// A stream id for a name (64-bit FNV-1a, then SplitMix64's finaliser).
inline std::uint64_t name_stream(std::string_view name) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : name) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    return mix64(h);
}

template <class T, class D = cpu>
class Scope {
public:
    using value_type = T;
    using device_type = D;

    Scope(ParameterArena<T, D>& arena, std::uint64_t seed, std::string prefix = {})
        : arena_(&arena), seed_(seed), prefix_(std::move(prefix)) {}

    // The scope of a sub-module: names gain "<name>.".
    Scope child(std::string_view name) const {
        check(!name.empty() && name.find('.') == std::string_view::npos, "nn::Scope::child",
              "a module name must be non-empty and contain no '.', got '", name, "' under '", prefix_, "'");
        return Scope(*arena_, seed_, this->name(name));
    }

    // The full name of an entry of this scope: "<prefix>.<leaf>" (or "<leaf>" at the root).
    std::string name(std::string_view leaf) const {
        std::string out = prefix_;
        if (!out.empty()) out.push_back('.');
        out.append(leaf);
        return out;
    }
    // This scope's own name ("" at the root); layers use it in their error messages.
    const std::string& prefix() const { return prefix_; }
    ParameterArena<T, D>& arena() const { return *arena_; }
    std::uint64_t seed() const { return seed_; }

    // The generator reserved for the entry `leaf` of this scope.
    Rng rng(std::string_view leaf) const { return Rng(seed_, name_stream(name(leaf))); }

    // Registers and initialises a parameter; the fans default to PyTorch's convention (fans_of).
    // The values are drawn on the arena's device (nn::initialize), the same on every device.
    ParamHandle parameter(std::string_view leaf, const Shape& shape, const Init& init, const Fans& fans,
                          ParameterOptions options = {}) const {
        const ParamHandle h = arena_->add_parameter(name(leaf), shape, options);
        if (shape.numel() > 0) {
            Rng generator = rng(leaf);
            initialize<T, D>(arena_->value(h), init, fans, generator);
        }
        return h;
    }
    ParamHandle parameter(std::string_view leaf, const Shape& shape, const Init& init,
                          ParameterOptions options = {}) const {
        return parameter(leaf, shape, init, shape.numel() > 0 ? fans_of(shape) : Fans{}, options);
    }

    // Registers a buffer (non-trainable state) filled with `value`.
    BufferHandle buffer(std::string_view leaf, const Shape& shape, T value) const {
        const BufferHandle h = arena_->add_buffer(name(leaf), shape);
        if (shape.numel() > 0) ops::fill(arena_->buffer_value(h), value);
        return h;
    }

private:
    ParameterArena<T, D>* arena_;
    std::uint64_t seed_;
    std::string prefix_;
};

}  // namespace gcl::nn
