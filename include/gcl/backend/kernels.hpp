#pragma once
// The contract between gcl::ops and the backends.
//
// gcl::ops checks arguments (shapes, contiguity, parameters) once, backend-neutrally, and then
// calls a kernel family specialised for the device tag of the views: backend::Conv2d<cpu> lives
// in backend/cpu/conv2d.hpp, a CUDA backend adds backend::Conv2d<cuda> in backend/cuda/*.cuh.
// Kernels may therefore assume valid, contiguous arguments; they never allocate the caller's
// outputs. A family left unspecialised for a device is an incomplete type, so using an op on a
// device without a backend fails at compile time naming the family and the device.
//
// Ops built from other ops (linear, transposed convolution, concat/split) have no family of
// their own: they run on every device whose families they use.
#include "gcl/core/shape.hpp"

namespace gcl::backend {

// The operation of Elementwise<D>::binary.
enum class BinaryOp { add, sub, mul, div };

// What the strict L2 normalisation found: the first line (vector) without a direction, and for
// a non-finite value its position along the line.
struct StrictNormalizeStatus {
    enum Problem { none, non_finite, zero, overflow };
    Problem problem = none;
    index_t line = -1;
    index_t position = -1;
};

// One label's contrastive loss (Contrast<D>::label_loss): the mean of the anchor terms over the
// anchors that have positives.
struct ContrastLabelLoss {
    double mean = 0;      // 0 when no anchor counted
    index_t counted = 0;  // anchors with at least one positive
};

template <class Device> struct Gemm;         // C = alpha op(A) op(B) + beta C
template <class Device> struct Conv2d;       // convolution: forward, backward data / weight
template <class Device> struct Bias;         // per-channel bias: add, gradient
template <class Device> struct BatchNorm;    // batch normalisation: train / eval, forward / backward
template <class Device> struct Activation;   // ReLU, LeakyReLU
template <class Device> struct Pooling;      // max pooling with indices, global average pooling
template <class Device> struct Softmax;      // softmax, log-softmax along a dimension
template <class Device> struct Normalize;    // L2 normalisation along a dimension: eps and strict modes
template <class Device> struct Elementwise;  // fill, strided copy, arithmetic
template <class Device> struct Reduce;       // sums, maxima, dot products, finiteness
template <class Device> struct FlatUpdate;   // an optimizer rule's element update over flat vectors
template <class Device> struct Contrast;     // the contrastive losses' per-pair passes
template <class Device> struct Segmentation; // cross-entropy and soft Dice: per-pixel passes and sums

// What Segmentation<D>::cross_entropy sums over the pixels not ignored.
struct CrossEntropySums {
    double weighted_loss = 0;  // sum_i w_{y_i} (-log p_{y_i})
    double weight = 0;         // sum_i w_{y_i}
    index_t counted = 0;       // pixels not ignored
};

// The first target that is neither a class nor the ignore index: its flat position and value
// (position -1: none).
struct BadTarget {
    index_t position = -1;
    index_t value = 0;
};

// A run [begin, end) of a flat parameter vector whose parameters share their optimizer options
// (FlatUpdate's unit of work).
struct UpdateRun {
    index_t begin = 0;
    index_t end = 0;
    bool weight_decay = true;
    bool trainable = true;
};

}  // namespace gcl::backend
