#pragma once
// The rearrangements of per-label gradients that the encoder-output mitigation level makes, on
// any device (ops::copy on strided views, ops::add, ops::dot_double):
//
//   label_rows_by_sample(g, m, rows)      label m's dL/dF [N, C, h, w] -> rows [N, K, C h w]
//   label_rows_by_location(g, m, rows)    label m's dL/dF [N, C, h, w] -> rows [N h w, K, C]
//   add_location_rows(rows, map, scratch) map [N, C, h, w] += rows [N h w, C]
//   row_gram(g)                           the K x K Gram matrix of the rows of g [K, P] (host)
//
// BatchedGradMitigator mitigates the rows [N, K, width] per sample (or per location); the
// combined rows [N, width] go back to the map's layout for the encoder's backward pass.
#include <cstddef>
#include <vector>

#include "gcl/core/shape.hpp"
#include "gcl/core/tensor_view.hpp"
#include "gcl/ops/elementwise.hpp"
#include "gcl/ops/reduce.hpp"

namespace gcl::train {

// Label m's dL/dF of every sample, g [N, ...] (F elements per sample), into rows [N, K, F].
template <class T, class D>
void label_rows_by_sample(ConstView<T, D> g, index_t m, TensorView<T, D> rows) {
    ops::copy(g.reshape(Shape{rows.dim(0), rows.dim(2)}), rows.select(1, m));
}

// Label m's dL/dF at every location, g [N, C, h, w], into rows [N h w, K, C]: row n h w + p
// holds the C channels of location p of sample n.
template <class T, class D>
void label_rows_by_location(ConstView<T, D> g, index_t m, TensorView<T, D> rows) {
    const index_t N = g.dim(0), C = g.dim(1), HW = g.dim(2) * g.dim(3), K = rows.dim(1);
    ops::copy(g.reshape(Shape{N, C, HW}).transpose(1, 2), rows.reshape(Shape{N, HW, K, C}).select(2, m));
}

// map [N, C, h, w] += rows [N h w, C] (one row per location, the layout of label_rows_by_location),
// through `scratch` (shaped like map).
template <class T, class D>
void add_location_rows(ConstView<T, D> rows, TensorView<T, D> map, TensorView<T, D> scratch) {
    const index_t N = map.dim(0), C = map.dim(1), HW = map.dim(2) * map.dim(3);
    ops::copy(rows.reshape(Shape{N, HW, C}).transpose(1, 2), scratch.reshape(Shape{N, C, HW}));
    ops::add(ConstView<T, D>(map), ConstView<T, D>(scratch), map);
}

// The K x K Gram matrix (host, row-major) of the rows of g [K, P], dot products in double.
template <class T, class D>
std::vector<double> row_gram(ConstView<T, D> g) {
    const index_t K = g.dim(0);
    std::vector<double> gram(static_cast<std::size_t>(K * K));
    for (index_t i = 0; i < K; ++i)
        for (index_t j = i; j < K; ++j)
            gram[static_cast<std::size_t>(i * K + j)] = gram[static_cast<std::size_t>(j * K + i)] =
                ops::dot_double(g.select(0, i), g.select(0, j));
    return gram;
}

}  // namespace gcl::train
