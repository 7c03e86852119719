#!/usr/bin/env bash
# Checks in the generated code that the CPU backend's element-wise loops vectorise: every loop
# under `omp simd` or `omp parallel for` in include/gcl/backend/cpu/ (except parallel.hpp's
# generic drivers, and loops over rows whose pragma follows a `// check_vectorised: rows (why)`
# comment, listed as ROWS) must appear in g++'s
# -fopt-info-vec-optimized report ("loop vectorized") of a translation unit that instantiates the
# kernels for float and double, compiled as gcl's own programs are (-O3 -march=native -fopenmp).
#
#   bash benchmarks/check_vectorised.sh          # prints each loop and VECTORISED / SCALAR; exit 1 if any is scalar
#
# Environment: CXX (g++), GCL_ARCH (native; e.g. x86-64 for the generic SSE2 target).
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CXX:-g++}
arch=${GCL_ARCH:-native}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT; [[ -n ${GCL_KEEP_REPORT:-} ]] && trap 'cp "$work/report.txt" "$GCL_KEEP_REPORT"; rm -rf "$work"' EXIT
cat >"$work/kernels.cpp" <<'CPP'
#include "gcl/backend/cpu/activation.hpp"
#include "gcl/backend/cpu/batch_norm.hpp"
#include "gcl/backend/cpu/bias.hpp"
#include "gcl/backend/cpu/contrast.hpp"
#include "gcl/backend/cpu/conv2d.hpp"
#include "gcl/backend/cpu/elementwise.hpp"
#include "gcl/backend/cpu/flat_update.hpp"
#include "gcl/backend/cpu/pooling.hpp"
namespace b = gcl::backend;
template <class T>
void instantiate() {
    gcl::TensorView<T, gcl::cpu> v;
    gcl::TensorView<const T, gcl::cpu> c;
    gcl::TensorView<gcl::index_t, gcl::cpu> idx;
    b::Activation<gcl::cpu>::relu_forward<T>(c, v);
    b::Activation<gcl::cpu>::relu_backward<T>(c, c, v);
    b::Activation<gcl::cpu>::leaky_relu_forward<T>(c, v, T(0.01));
    b::Activation<gcl::cpu>::leaky_relu_backward<T>(c, c, v, T(0.01));
    b::BatchNorm<gcl::cpu>::forward_train<T>(c, c, c, v, v, v, v, v, 1, 1, 1, 0.1, 1e-5);
    b::BatchNorm<gcl::cpu>::forward_eval<T>(c, c, c, c, c, v, 1, 1, 1, 1e-5);
    b::BatchNorm<gcl::cpu>::backward_train<T>(c, c, c, c, c, v, v, v, 1, 1, 1, true);
    b::BatchNorm<gcl::cpu>::backward_eval<T>(c, c, c, c, c, v, v, v, 1, 1, 1, 1e-5, true);
    b::Bias<gcl::cpu>::add<T>(c, v, 1, 1, 1);
    b::Bias<gcl::cpu>::backward<T>(c, v, 1, 1, 1, true);
    b::Pooling<gcl::cpu>::global_avg_pool_forward<T>(c, v, 1, 1);
    b::Elementwise<gcl::cpu>::fill<T>(v, T(0));
    b::Elementwise<gcl::cpu>::binary<T>(b::BinaryOp::add, c, c, v);
    b::Elementwise<gcl::cpu>::affine<T>(c, T(1), T(0), v);
    b::Elementwise<gcl::cpu>::axpby<T>(T(1), c, T(1), v);
}
// Explicit instantiations where a call with empty views would let the compiler fold the loops.
template void b::Conv2d<gcl::cpu>::backward_weight<float>(gcl::TensorView<const float, gcl::cpu>,
    gcl::TensorView<const float, gcl::cpu>, gcl::TensorView<float, gcl::cpu>, const gcl::Conv2dParams&, bool);
template void b::Pooling<gcl::cpu>::max_pool2d_forward<float>(gcl::TensorView<const float, gcl::cpu>,
    gcl::TensorView<float, gcl::cpu>, gcl::TensorView<gcl::index_t, gcl::cpu>, const gcl::Pool2dParams&);
template void b::Pooling<gcl::cpu>::max_pool2d_forward<double>(gcl::TensorView<const double, gcl::cpu>,
    gcl::TensorView<double, gcl::cpu>, gcl::TensorView<gcl::index_t, gcl::cpu>, const gcl::Pool2dParams&);
template void b::Elementwise<gcl::cpu>::convert<float, double>(gcl::TensorView<const float, gcl::cpu>,
    gcl::TensorView<double, gcl::cpu>);
template void b::Elementwise<gcl::cpu>::convert<double, float>(gcl::TensorView<const double, gcl::cpu>,
    gcl::TensorView<float, gcl::cpu>);
template gcl::index_t b::FlatUpdate<gcl::cpu>::first_nonfinite<float>(const float*, gcl::index_t);
template gcl::index_t b::FlatUpdate<gcl::cpu>::first_nonfinite<double>(const double*, gcl::index_t);
template void b::Contrast<gcl::cpu>::pair_grad_magnitudes<float>(gcl::TensorView<const float, gcl::cpu>, gcl::index_t,
    gcl::index_t, gcl::TensorView<float, gcl::cpu>);
template void b::Contrast<gcl::cpu>::mask_pair_grads<float>(gcl::TensorView<const std::uint8_t, gcl::cpu>,
    gcl::TensorView<float, gcl::cpu>);
template void instantiate<float>();
template void instantiate<double>();
#if GCL_HAS_ONEDNN_CONV
// The oneDNN convolution's own loops (its accumulation of weight gradients).
void use_onednn_plan(gcl::backend::onednn::ConvPlan& plan, const float* dy, const float* x, float* dw) {
    plan.backward_weight(dy, x, dw, true);
}
#endif
CPP
# With oneDNN's headers present, the optional oneDNN convolution's loops are checked too.
onednn=()
[[ -f /usr/include/oneapi/dnnl/dnnl.hpp || -f /usr/include/dnnl.hpp ]] && onednn=(-DGCL_CPU_CONV_ONEDNN -I/usr/include/oneapi/dnnl)
"$cxx" -std=c++20 -O3 -march="$arch" -fopenmp -DNDEBUG -Iinclude -I/usr/include/eigen3 "${onednn[@]}" -c "$work/kernels.cpp" \
    -o "$work/kernels.o" -fopt-info-vec-optimized${GCL_VEC_MISSED:+ -fopt-info-vec-missed} 2>"$work/report.txt"
status=0
for header in include/gcl/backend/cpu/*.hpp; do
    [[ $header == */parallel.hpp ]] && continue
    [[ $header == */onednn_conv2d.hpp && ${#onednn[@]} == 0 ]] && { echo "SKIPPED    $header (no oneDNN headers)"; continue; }
    # The line of the loop under each simd pragma.
    while read -r line; do
        [[ -z $line ]] && continue
        loop=$((line + 1))
        if sed -n "$((line - 1))p" "$header" | grep -q "check_vectorised: rows"; then
            echo "ROWS       $header:$loop $(sed -n "$((line - 1))p" "$header" | sed 's/.*rows *//' | cut -c1-70)"
            continue
        fi
        # g++ names the loop's line or, for a loop with a body in braces, a line of the body.
        body=$(awk -v from="$loop" 'NR >= from { print NR; if (NR > from && $0 ~ /^ *}/) exit; if (NR == from && $0 !~ /{ *$/) exit }' "$header")
        if grep -q -E "$(basename "$header"):($(echo $body | tr ' ' '|')):[0-9]+: optimized: loop vectorized" "$work/report.txt"; then
            echo "VECTORISED $header:$loop $(sed -n "${loop}p" "$header" | sed 's/^ *//' | cut -c1-70)"
        else
            echo "SCALAR     $header:$loop $(sed -n "${loop}p" "$header" | sed 's/^ *//' | cut -c1-70)"
            status=1
        fi
    done < <(grep -n -E "#pragma omp (.* )?simd|#pragma omp parallel for" "$header" | cut -d: -f1)
done
echo "check_vectorised: $cxx -O3 -march=$arch: $( [[ $status == 0 ]] && echo "every marked loop vectorised" || echo "some loops stayed scalar")"
exit $status
