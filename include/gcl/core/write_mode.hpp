#pragma once
// gcl::WriteMode: whether a pass replaces what its output holds or adds to it. Ops take it for
// the tensors they write (ops/), and nn::ParameterArena for the gradient target of a backward
// pass (a target in overwrite mode is zeroed when the pass begins).

namespace gcl {

enum class WriteMode {
    overwrite,   // the output ends up holding this pass's result
    accumulate,  // the pass adds to what the output holds: several losses, several uses of one
                 // parameter, gradient accumulation over micro-batches
};

}  // namespace gcl
