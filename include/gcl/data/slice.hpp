#pragma once
// The unit of data gcl trains on: a 2D short-axis slice, its ground truth (when labelled) and
// its meta labels, plus the 3D volume (one patient, one cardiac phase) that slices come from.
#include <array>
#include <cstdint>
#include <vector>

#include "gcl/core/error.hpp"
#include "gcl/core/tensor.hpp"

namespace gcl::data {

// Whether a tensor holds elements: false for a default-constructed (empty) tensor, which is how
// a missing label map or label batch is represented.
template <class T>
bool has_elements(const Tensor<T>& t) {
    return !t.empty();
}

// Ground-truth classes, in the ACDC challenge's numbering.
namespace cls {
inline constexpr std::uint8_t background = 0;
inline constexpr std::uint8_t rv = 1;          // right-ventricular cavity
inline constexpr std::uint8_t myocardium = 2;  // left-ventricular myocardium
inline constexpr std::uint8_t lv = 3;          // left-ventricular cavity
inline constexpr int count = 4;
}  // namespace cls

enum class Phase : std::int32_t { ed = 0, es = 1 };  // end-diastole, end-systole

inline const char* phase_name(Phase p) { return p == Phase::ed ? "ED" : "ES"; }

// What is known about a slice without looking at it: the raw material of meta labels.
struct SliceMeta {
    std::int64_t patient = 0;  // patient id
    std::int32_t slice = 0;    // index in its stack, 0 = most basal
    std::int32_t slices = 1;   // number of slices in the stack
    double position = 0.0;     // 0 at the base, 1 at the apex: slice / (slices - 1)
    Phase phase = Phase::ed;
    std::int32_t scanner = 0;  // acquisition domain

    friend bool operator==(const SliceMeta&, const SliceMeta&) = default;
};

// Normalised position of slice k in a stack of n slices (0 for a single slice).
inline double slice_position(index_t k, index_t n) {
    check(n >= 1 && k >= 0 && k < n, "slice_position", "slice ", k, " out of range for a stack of ", n);
    return n == 1 ? 0.0 : static_cast<double>(k) / static_cast<double>(n - 1);
}

struct Slice {
    Tensor<float> image;         // (H, W)
    Tensor<std::uint8_t> label;  // (H, W) class map; default-constructed when unlabelled
    SliceMeta meta;
    std::array<double, 2> spacing{1.0, 1.0};  // millimetres per pixel along rows (y) and columns (x)

    bool labelled() const { return has_elements(label); }
};

// One patient at one phase: a stack of short-axis slices, base first.
struct Volume {
    Tensor<float> image;         // (slices, H, W)
    Tensor<std::uint8_t> label;  // (slices, H, W); default-constructed when unlabelled
    std::int64_t patient = 0;
    Phase phase = Phase::ed;
    std::int32_t scanner = 0;
    std::array<double, 3> spacing{1.0, 1.0, 1.0};  // millimetres along x (columns), y (rows), z (slices)

    index_t slices() const { return image.rank() == 3 ? image.dim(0) : 0; }
    bool labelled() const { return has_elements(label); }
};

// Cuts a volume into its slices, with meta labels.
inline std::vector<Slice> volume_slices(const Volume& v) {
    check(v.image.rank() == 3, "volume_slices", "volume image must be (slices, H, W), got ", v.image.shape());
    check(!v.labelled() || v.label.shape() == v.image.shape(), "volume_slices", "label shape ", v.label.shape(),
          " differs from image shape ", v.image.shape());
    const index_t n = v.image.dim(0);
    std::vector<Slice> out(static_cast<std::size_t>(n));
    for (index_t k = 0; k < n; ++k) {
        Slice& s = out[static_cast<std::size_t>(k)];
        s.image = Tensor<float>::copy_of(v.image.cview().select(0, k));
        if (v.labelled()) s.label = Tensor<std::uint8_t>::copy_of(v.label.cview().select(0, k));
        s.meta = SliceMeta{v.patient, static_cast<std::int32_t>(k), static_cast<std::int32_t>(n), slice_position(k, n),
                           v.phase, v.scanner};
        s.spacing = {v.spacing[1], v.spacing[0]};
    }
    return out;
}

inline std::vector<SliceMeta> meta_of(const std::vector<Slice>& slices) {
    std::vector<SliceMeta> m;
    m.reserve(slices.size());
    for (const Slice& s : slices) m.push_back(s.meta);
    return m;
}

}  // namespace gcl::data
