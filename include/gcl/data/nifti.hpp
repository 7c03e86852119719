#pragma once
// NIfTI-1 volumes: single-file .nii and gzip-compressed .nii.gz, read and written.
//
// Layout: NIfTI stores x fastest, then y, z, t. gcl keeps the bytes in that order and reverses
// the extents, so a volume of NIfTI dims (nx, ny, nz) is a row-major Tensor of shape
// (nz, ny, nx): element (z, y, x) is voxel (x, y, z) and no transpose ever happens.
//
// Reading validates the whole header before it allocates (sizes, data type, offsets, transform
// fields) and checks that the file holds every byte the header promises; a gzip stream must end
// with a valid checksum. Anything else is a gcl::Error naming the file. Writing goes through a
// temporary file that is renamed into place, so a crash never leaves a half-written volume.
//
//   data/nifti/header.hpp   types, transform codes, NiftiHeader and its parser
//   data/nifti/read.hpp     read_nifti, read_nifti_header, parse_nifti
//   data/nifti/write.hpp    write_nifti, encode_nifti, nifti_write_options
#include "gcl/data/nifti/header.hpp"
#include "gcl/data/nifti/read.hpp"
#include "gcl/data/nifti/write.hpp"
