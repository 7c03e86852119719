#pragma once
// CPU convolution through oneDNN (float only): the backend of Conv2d<cpu> for float when gcl is
// configured with GCL_CPU_CONV=onednn (the gcl::onednn target defines GCL_CPU_CONV_ONEDNN); the
// im2col path (conv2d.hpp) stays for double and for builds without oneDNN.
//
// gcl's tensors are plain NCHW / OIHW. oneDNN's direct convolutions run on blocked layouts
// (nChw16c and the like, chosen by the library for the machine's ISA), so each operand whose
// preferred layout differs from the plain one is reordered into or out of a blocked buffer. A
// ConvPlan holds, for one geometry, the three primitives (forward, backward data, backward
// weights) and the reorders, built on the first call of that geometry and reused afterwards.
// Blocked copies that live only during a call, and oneDNN's scratchpads, use the thread's
// persistent scratch slots (workspace.hpp) that all plans share, so a steady-state step allocates
// nothing here. Plans are per calling thread (thread_local).
//
// A layer runs one forward and then one or more backward passes (K of them in a GCL step) on the
// same input x and weight w. Given an OperandCache (one per layer), the forward pass reorders x
// and w into the cache instead of into scratch, and every backward pass after it reads those
// blocked copies instead of reordering x and w again; a backward pass reorders its incoming
// gradient dy once for both the weight and the data gradient. Reorders copy values exactly, so
// the results are the same bits as without the cache.
//
// Threads: oneDNN's CPU runtime on Debian is OpenMP (libgomp), the runtime gcl's own loops use;
// a call runs on omp_get_max_threads() threads, like gcl's parallel loops. For a given build,
// machine and thread count, every call repeats exactly (its reductions run in a fixed order).
// The figures differ from the im2col path's by float rounding (other summation orders).
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>

#include "gcl/backend/cpu/conv_geometry.hpp"
#include "gcl/backend/cpu/workspace.hpp"
#include "gcl/core/buffer.hpp"
#include "gcl/core/error.hpp"

#if defined(GCL_CPU_CONV_ONEDNN) && !defined(__CUDACC__)
#define GCL_HAS_ONEDNN_CONV 1
#include <dnnl.hpp>
#else
#define GCL_HAS_ONEDNN_CONV 0
#endif

namespace gcl::backend::onednn {

using cpu_detail::ConvGeometry;

inline constexpr bool enabled = GCL_HAS_ONEDNN_CONV;

// The blocked copies of one convolution layer's forward operands, kept from its forward pass
// for the backward passes that follow it. They are used by a backward call with the same
// geometry (on the same thread) and the same x and w pointers as the last forward call given
// this cache, and replaced by the next one: the caller keeps x and w unchanged between its
// forward and its backward passes (the layer contract). Each buffer grows to the largest size
// asked and is then reused, so a steady-state step allocates nothing. Holds about the size of
// the layer's input plus its weight (twice where the backward primitives want other layouts
// than the forward one); empty in builds without oneDNN.
class OperandCache {
public:
    // Forgets the copies (the next backward call reorders again).
    void clear() { plan_ = nullptr; }
    // Bytes the cache holds.
    std::size_t bytes() const {
        return x_forward_.bytes() + w_forward_.bytes() + x_weight_pass_.bytes() + w_data_pass_.bytes();
    }

private:
    friend class ConvPlan;
    const void* plan_ = nullptr;  // the plan whose layouts the copies have; null: none kept
    const float* x_ = nullptr;
    const float* w_ = nullptr;
    Buffer<float, cpu> x_forward_, w_forward_;        // x and w in the forward primitive's layouts
    Buffer<float, cpu> x_weight_pass_, w_data_pass_;  // where the backward primitives want others
    bool x_weight_pass_ready_ = false, w_data_pass_ready_ = false;
};

#if GCL_HAS_ONEDNN_CONV

namespace detail {

using dnnl::memory;

inline dnnl::engine& engine() {
    static dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}

// The per-thread scratch slot (workspace.hpp) of each role in a call: blocked copies and the
// scratchpad only live during one call, so all plans of a thread share them.
inline constexpr cpu_detail::ScratchSlot first_input = cpu_detail::ScratchSlot::columns;
inline constexpr cpu_detail::ScratchSlot second_input = cpu_detail::ScratchSlot::partial_sums;
inline constexpr cpu_detail::ScratchSlot result = cpu_detail::ScratchSlot::gradient_columns;
inline constexpr cpu_detail::ScratchSlot scratchpad = cpu_detail::ScratchSlot::data_columns;

// `m` pointed at this thread's scratch slot, grown to hold m's layout.
inline memory& in_scratch(memory& m, cpu_detail::ScratchSlot slot) {
    const auto elements = static_cast<index_t>((m.get_desc().get_size() + sizeof(float) - 1) / sizeof(float));
    m.set_data_handle(cpu_detail::thread_scratch<float>(std::max<index_t>(elements, 1), slot));
    return m;
}

// `b` grown to hold a memory of layout `d` (never shrunk).
inline float* sized_for(Buffer<float, cpu>& b, const memory::desc& d) {
    const std::size_t elements = std::max<std::size_t>((d.get_size() + sizeof(float) - 1) / sizeof(float), 1);
    if (b.size() < elements) b = Buffer<float, cpu>(elements);
    return b.data();
}

// One operand of a primitive: the caller's plain buffer and, where the primitive wants another
// layout, a copy in that layout (in a scratch slot, or in a buffer the caller keeps) with the
// reorder between the two.
class Operand {
public:
    Operand(const memory::desc& plain, const memory::desc& wanted, bool is_input, cpu_detail::ScratchSlot slot)
        : user_(plain, engine(), DNNL_MEMORY_NONE), staged_(wanted != plain), slot_(slot) {
        if (!staged_) return;
        inner_ = memory(wanted, engine(), DNNL_MEMORY_NONE);
        reorder_ = is_input ? dnnl::reorder(user_, *inner_) : dnnl::reorder(*inner_, user_);
    }

    // The memory to give the primitive for an input at `data` (reordered when staged).
    memory& input(dnnl::stream& s, const float* data) {
        user_.set_data_handle(const_cast<float*>(data));
        if (!staged_) return user_;
        reorder_->execute(s, user_, in_scratch(*inner_, slot_));
        return *inner_;
    }
    // The same, with the copy written to `keep` (grown to hold it) rather than to scratch.
    memory& input_kept(dnnl::stream& s, const float* data, Buffer<float, cpu>& keep) {
        user_.set_data_handle(const_cast<float*>(data));
        if (!staged_) return user_;
        inner_->set_data_handle(sized_for(keep, inner_->get_desc()));
        reorder_->execute(s, user_, *inner_);
        return *inner_;
    }
    // The memory for an input at `data` whose copy, where staged, an earlier input_kept left in
    // `keep`.
    memory& input_from(const float* data, Buffer<float, cpu>& keep) {
        user_.set_data_handle(const_cast<float*>(data));
        if (!staged_) return user_;
        inner_->set_data_handle(keep.data());
        return *inner_;
    }
    // The memory for an output that must end up at `data`; call finish() after the primitive.
    memory& output(float* data) {
        user_.set_data_handle(data);
        return staged_ ? in_scratch(*inner_, slot_) : user_;
    }
    void finish(dnnl::stream& s) {
        if (staged_) reorder_->execute(s, *inner_, user_);
    }

private:
    memory user_;
    bool staged_;
    cpu_detail::ScratchSlot slot_;
    std::optional<memory> inner_;
    std::optional<dnnl::reorder> reorder_;
};

inline memory scratchpad_memory(const memory::desc& d) { return memory(d, engine(), DNNL_MEMORY_NONE); }

}  // namespace detail

class ConvPlan {
public:
    explicit ConvPlan(const ConvGeometry& g) : stream_(detail::engine()) {
        using memory = dnnl::memory;
        using tag = memory::format_tag;
        const auto f32 = memory::data_type::f32;
        const memory::dims src_dims{g.batch, g.channels, g.height, g.width};
        const memory::dims weight_dims{g.filters, g.channels, g.kernel_h, g.kernel_w};
        const memory::dims dst_dims{g.batch, g.filters, g.out_h, g.out_w};
        const memory::dims strides{g.stride_h, g.stride_w}, pad_l{g.pad_h, g.pad_w};
        const memory::dims pad_r{g.pad_bottom(), g.pad_right()};
        const memory::dims dilation{g.dilation_h - 1, g.dilation_w - 1};  // oneDNN counts the gaps
        const memory::desc src_plain(src_dims, f32, tag::nchw), dst_plain(dst_dims, f32, tag::nchw);
        const memory::desc weight_plain(weight_dims, f32, tag::oihw);
        const memory::desc src_any(src_dims, f32, tag::any), dst_any(dst_dims, f32, tag::any);
        const memory::desc weight_any(weight_dims, f32, tag::any);
        const auto direct = dnnl::algorithm::convolution_direct;

        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const dnnl::convolution_forward::primitive_desc fwd(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, src_any, weight_any, dst_any,
                                            strides, dilation, pad_l, pad_r),
            attr, detail::engine());
        const dnnl::convolution_backward_data::primitive_desc bwd_data(
            dnnl::convolution_backward_data::desc(direct, src_any, weight_any, dst_any, strides, dilation, pad_l, pad_r),
            attr, detail::engine(), fwd);
        const dnnl::convolution_backward_weights::primitive_desc bwd_weight(
            dnnl::convolution_backward_weights::desc(direct, src_any, weight_any, dst_any, strides, dilation, pad_l,
                                                     pad_r),
            attr, detail::engine(), fwd);

        forward_.emplace(fwd);
        fwd_src_.emplace(src_plain, fwd.src_desc(), true, detail::first_input);
        fwd_weight_.emplace(weight_plain, fwd.weights_desc(), true, detail::second_input);
        fwd_dst_.emplace(dst_plain, fwd.dst_desc(), false, detail::result);
        fwd_scratch_ = detail::scratchpad_memory(fwd.scratchpad_desc());

        backward_data_.emplace(bwd_data);
        bd_dy_.emplace(dst_plain, bwd_data.diff_dst_desc(), true, detail::first_input);
        bd_weight_.emplace(weight_plain, bwd_data.weights_desc(), true, detail::second_input);
        bd_dx_.emplace(src_plain, bwd_data.diff_src_desc(), false, detail::result);
        bd_scratch_ = detail::scratchpad_memory(bwd_data.scratchpad_desc());

        backward_weight_.emplace(bwd_weight);
        bw_dy_.emplace(dst_plain, bwd_weight.diff_dst_desc(), true, detail::first_input);
        bw_x_.emplace(src_plain, bwd_weight.src_desc(), true, detail::second_input);
        bw_dw_.emplace(weight_plain, bwd_weight.diff_weights_desc(), false, detail::result);
        bw_scratch_ = detail::scratchpad_memory(bwd_weight.scratchpad_desc());
        x_layout_shared_ = fwd.src_desc() == bwd_weight.src_desc();
        w_layout_shared_ = fwd.weights_desc() == bwd_data.weights_desc();
        dy_layout_shared_ = bwd_weight.diff_dst_desc() == bwd_data.diff_dst_desc();
        weight_size_ = g.filters * g.channels * g.kernel_h * g.kernel_w;
        dw_sum_ = std::make_unique<float[]>(static_cast<std::size_t>(weight_size_));
    }

    // y = conv(x, w), overwritten; with `keep`, the blocked copies of x and w stay in it for
    // the backward calls that follow.
    void forward(const float* x, const float* w, float* y, OperandCache* keep = nullptr) {
        dnnl::memory* src = nullptr;
        dnnl::memory* weights = nullptr;
        if (keep) {
            keep->plan_ = this;
            keep->x_ = x;
            keep->w_ = w;
            keep->x_weight_pass_ready_ = keep->w_data_pass_ready_ = false;
            src = &fwd_src_->input_kept(stream_, x, keep->x_forward_);
            weights = &fwd_weight_->input_kept(stream_, w, keep->w_forward_);
        } else {
            src = &fwd_src_->input(stream_, x);
            weights = &fwd_weight_->input(stream_, w);
        }
        forward_->execute(stream_, {{DNNL_ARG_SRC, *src},
                                    {DNNL_ARG_WEIGHTS, *weights},
                                    {DNNL_ARG_DST, fwd_dst_->output(y)},
                                    {DNNL_ARG_SCRATCHPAD, detail::in_scratch(fwd_scratch_, detail::scratchpad)}});
        fwd_dst_->finish(stream_);
        stream_.wait();
    }

    // dw (+)= the weight gradient and dx = the data gradient of dy, one reorder of dy for both;
    // x and w come from `keep` where it holds this plan's copies of them. dx == nullptr skips the
    // data gradient.
    void backward(const float* dy, const float* x, const float* w, float* dx, float* dw, bool accumulate,
                  OperandCache* keep = nullptr) {
        const bool kept = keep && keep->plan_ == this && keep->x_ == x && keep->w_ == w;
        dnnl::memory& dy_for_weight = bw_dy_->input(stream_, dy);
        dnnl::memory& src = kept ? kept_input(*bw_x_, x, x_layout_shared_, keep->x_forward_, keep->x_weight_pass_,
                                              keep->x_weight_pass_ready_)
                                 : bw_x_->input(stream_, x);
        run_backward_weight(dy_for_weight, src, dw, accumulate);
        if (!dx) return;

        // dy's blocked copy (first_input scratch) is still intact: the weight pass wrote only
        // its result and scratchpad slots.
        dnnl::memory& dy_for_data = dy_layout_shared_ ? dy_for_weight : bd_dy_->input(stream_, dy);
        dnnl::memory& weights = kept ? kept_input(*bd_weight_, w, w_layout_shared_, keep->w_forward_,
                                                  keep->w_data_pass_, keep->w_data_pass_ready_)
                                     : bd_weight_->input(stream_, w);
        run_backward_data(dy_for_data, weights, dx);
    }

    // dx = the adjoint of forward applied to dy, overwritten.
    void backward_data(const float* dy, const float* w, float* dx) {
        dnnl::memory& diff_dst = bd_dy_->input(stream_, dy);
        run_backward_data(diff_dst, bd_weight_->input(stream_, w), dx);
    }

    // dw (+)= the weight gradient of dy at input x.
    void backward_weight(const float* dy, const float* x, float* dw, bool accumulate) {
        dnnl::memory& diff_dst = bw_dy_->input(stream_, dy);
        run_backward_weight(diff_dst, bw_x_->input(stream_, x), dw, accumulate);
    }

private:
    // A backward primitive's input from a layer's kept copies: the forward's copy where the
    // layouts agree, else a copy in the backward layout made once per forward.
    dnnl::memory& kept_input(detail::Operand& operand, const float* data, bool layout_shared,
                             Buffer<float, cpu>& forward_copy, Buffer<float, cpu>& own_copy, bool& own_ready) {
        if (layout_shared) return operand.input_from(data, forward_copy);
        if (own_ready) return operand.input_from(data, own_copy);
        own_ready = true;
        return operand.input_kept(stream_, data, own_copy);
    }

    void run_backward_data(dnnl::memory& diff_dst, dnnl::memory& weights, float* dx) {
        backward_data_->execute(stream_, {{DNNL_ARG_DIFF_DST, diff_dst},
                                          {DNNL_ARG_WEIGHTS, weights},
                                          {DNNL_ARG_DIFF_SRC, bd_dx_->output(dx)},
                                          {DNNL_ARG_SCRATCHPAD, detail::in_scratch(bd_scratch_, detail::scratchpad)}});
        bd_dx_->finish(stream_);
        stream_.wait();
    }

    void run_backward_weight(dnnl::memory& diff_dst, dnnl::memory& src, float* dw, bool accumulate) {
        backward_weight_->execute(stream_, {{DNNL_ARG_DIFF_DST, diff_dst},
                                            {DNNL_ARG_SRC, src},
                                            {DNNL_ARG_DIFF_WEIGHTS, bw_dw_->output(accumulate ? dw_sum_.get() : dw)},
                                            {DNNL_ARG_SCRATCHPAD, detail::in_scratch(bw_scratch_, detail::scratchpad)}});
        bw_dw_->finish(stream_);
        stream_.wait();
        if (!accumulate) return;
        const float* from = dw_sum_.get();
#pragma omp simd
        for (index_t i = 0; i < weight_size_; ++i) dw[i] += from[i];
    }

    dnnl::stream stream_;
    std::optional<dnnl::convolution_forward> forward_;
    std::optional<dnnl::convolution_backward_data> backward_data_;
    std::optional<dnnl::convolution_backward_weights> backward_weight_;
    std::optional<detail::Operand> fwd_src_, fwd_weight_, fwd_dst_, bd_dy_, bd_weight_, bd_dx_, bw_dy_, bw_x_, bw_dw_;
    dnnl::memory fwd_scratch_, bd_scratch_, bw_scratch_;
    bool x_layout_shared_ = false, w_layout_shared_ = false, dy_layout_shared_ = false;  // between the passes
    index_t weight_size_ = 0;
    std::unique_ptr<float[]> dw_sum_;  // the weight gradient before it is added into dw
};

// Whether oneDNN can run this geometry exactly (a negative trailing padding, possible where the
// output drops input rows, is left to the im2col path).
inline bool supports(const ConvGeometry& g) { return g.pad_bottom() >= 0 && g.pad_right() >= 0; }

// This thread's plan for the geometry, built on first use.
inline ConvPlan& plan(const ConvGeometry& g) {
    thread_local std::map<std::array<index_t, 15>, std::unique_ptr<ConvPlan>> plans;
    auto& slot = plans[g.key()];
    if (!slot) {
        try {
            slot = std::make_unique<ConvPlan>(g);
        } catch (const dnnl::error& e) {
            plans.erase(g.key());
            fail("conv2d (oneDNN)", "no convolution for input [", g.batch, ", ", g.channels, ", ", g.height, ", ",
                 g.width, "], weight [", g.filters, ", ", g.channels, ", ", g.kernel_h, ", ", g.kernel_w,
                 "], output ", g.out_h, "x", g.out_w, ": ", e.what());
        }
    }
    return *slot;
}

#endif

// The passes Conv2d<cpu> calls for float: each runs on oneDNN and returns true, or returns false
// (oneDNN not configured, or a geometry it does not take) for the im2col path to run.
inline bool forward(const ConvGeometry& g, const float* x, const float* w, float* y, OperandCache* keep = nullptr) {
#if GCL_HAS_ONEDNN_CONV
    if (supports(g)) return plan(g).forward(x, w, y, keep), true;
#endif
    if (keep) keep->clear();  // no copies of this forward's operands: backward reorders
    return (void)g, (void)x, (void)w, (void)y, (void)keep, false;
}

// The weight gradient (dw = or +=) and the data gradient (dx =) of one backward pass.
inline bool backward(const ConvGeometry& g, const float* dy, const float* x, const float* w, float* dx, float* dw,
                     bool accumulate, OperandCache* keep = nullptr) {
#if GCL_HAS_ONEDNN_CONV
    if (supports(g)) return plan(g).backward(dy, x, w, dx, dw, accumulate, keep), true;
#endif
    return (void)g, (void)dy, (void)x, (void)w, (void)dx, (void)dw, (void)accumulate, (void)keep, false;
}

inline bool backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
#if GCL_HAS_ONEDNN_CONV
    if (supports(g)) return plan(g).backward_data(dy, w, dx), true;
#endif
    return (void)g, (void)dy, (void)w, (void)dx, false;
}

inline bool backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw, bool accumulate) {
#if GCL_HAS_ONEDNN_CONV
    if (supports(g)) return plan(g).backward_weight(dy, x, dw, accumulate), true;
#endif
    return (void)g, (void)dy, (void)x, (void)dw, (void)accumulate, false;
}

}  // namespace gcl::backend::onednn
