#pragma once
// The phantom written as an ACDC-layout tree of NIfTI files, so that everything that reads ACDC
// (gcl's loader, nibabel, ITK-SNAP, other toolkits) can read the phantom too.
#include <filesystem>
#include <vector>

#include "gcl/data/acdc.hpp"
#include "gcl/data/phantom.hpp"

namespace gcl::data {

// Info.cfg contents for a phantom patient (its pathology group, cine frame count, ED and ES
// frame numbers, height and weight).
inline AcdcInfo phantom_acdc_info(const PhantomPatient& p) {
    AcdcInfo info;
    info.ed = 1;
    info.es = p.es_frame;
    info.group = pathology_code(p.pathology);
    info.height = p.height_cm;
    info.weight = p.weight_kg;
    info.frames = p.frames;
    return info;
}

// Generates the phantom and writes it under root (patientNNN folders); returns the volumes.
inline std::vector<Volume> write_phantom_acdc(const std::filesystem::path& root, const PhantomOptions& options) {
    std::vector<Volume> volumes = phantom_volumes(options);
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    check(!ec, "write_phantom_acdc", "cannot create the folder ", root.string(), ": ", ec.message());
    for (std::size_t i = 0; i + 1 < volumes.size(); i += 2) {
        const PhantomPatient p = phantom_patient(options.seed, volumes[i].patient);
        write_acdc_patient(root, volumes[i], volumes[i + 1], phantom_acdc_info(p));
    }
    return volumes;
}

}  // namespace gcl::data
