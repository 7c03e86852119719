#!/usr/bin/python3
"""The nibabel side of gcl's NIfTI cross-check. Usage: nibabel_roundtrip.py DIR

1. Every gcl_*.nii / gcl_*.nii.gz in DIR (written by gcl) is loaded with nibabel; what nibabel
   sees is saved next to it: <stem>.nib_data.npy (scaled values, float64, axes reversed to gcl's
   order), .nib_affine.npy, .nib_qform.npy, .nib_zooms.npy, .nib_dtype.npy (datatype code).
2. nibabel writes its own files nib_*.nii[.gz] (several datatypes, scaling, big-endian, rotated
   affines) with the same .nib_*.npy files describing how nibabel reads them back.
"""
import glob
import os
import sys

import nibabel as nib
import numpy as np


def describe(path, stem):
    img = nib.load(path)
    data = np.asarray(img.get_fdata(dtype=np.float64))
    np.save(stem + ".nib_data.npy", np.ascontiguousarray(data.T))
    np.save(stem + ".nib_affine.npy", np.asarray(img.affine, dtype=np.float64))
    np.save(stem + ".nib_qform.npy", np.asarray(img.header.get_qform(), dtype=np.float64))
    np.save(stem + ".nib_zooms.npy", np.asarray(img.header.get_zooms(), dtype=np.float64))
    np.save(stem + ".nib_dtype.npy", np.array([int(img.header["datatype"])], dtype=np.int64))


def stem_of(path):
    for ext in (".nii.gz", ".nii"):
        if path.endswith(ext):
            return path[: -len(ext)]
    raise ValueError(path)


def rotated_affine(zooms, angle, offset, flip):
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0.0], [s * 0.6, c * 0.6, -0.8], [s * 0.8, c * 0.8, 0.6]])
    z = np.array(zooms, dtype=float)
    if flip:
        z[2] = -z[2]
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag(z)
    a[:3, 3] = offset
    return a


def write_nibabel_files(out):
    shape = (6, 5, 4)
    base = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    cases = [
        ("uint8", np.uint8, (base * 2) % 256, False),
        ("int16", np.int16, base * 37 - 2000, True),
        ("int32", np.int32, base * 1e5 - 3e6, False),
        ("float32", np.float32, np.sin(base) * 10, True),
        ("float64", np.float64, np.cos(base) * 1e-3, False),
    ]
    for i, (name, dtype, values, flip) in enumerate(cases):
        for ext in (".nii", ".nii.gz"):
            aff = rotated_affine((0.8 + 0.1 * i, 1.1, 2.5 + i), 0.3 * i, (i, -2.0 * i, 7.5), flip)
            img = nib.Nifti1Image(values.astype(dtype), aff, dtype=dtype)
            img.header.set_qform(aff, code=1)
            path = os.path.join(out, f"nib_{name}{ext}")
            nib.save(img, path)
            describe(path, stem_of(path))
    # Floats stored as int16 with nibabel's own scl_slope / scl_inter.
    img = nib.Nifti1Image(np.sin(base) * 123.4 + 50.0, rotated_affine((1.0, 1.0, 8.0), 0.1, (0, 0, 0), False))
    img.set_data_dtype(np.int16)
    path = os.path.join(out, "nib_scaled.nii.gz")
    nib.save(img, path)
    describe(path, stem_of(path))
    # A big-endian file.
    img = nib.Nifti1Image((base * 3.5).astype(">f4"), rotated_affine((2.0, 2.0, 2.0), -0.4, (1, 2, 3), True),
                          header=nib.Nifti1Header(endianness=">"))
    path = os.path.join(out, "nib_big_endian.nii")
    nib.save(img, path)
    describe(path, stem_of(path))


def main():
    out = sys.argv[1]
    read = 0
    for path in sorted(glob.glob(os.path.join(out, "gcl_*.nii")) + glob.glob(os.path.join(out, "gcl_*.nii.gz"))):
        describe(path, stem_of(path))
        read += 1
    write_nibabel_files(out)
    print(f"nibabel read {read} gcl files and wrote 12 of its own")
    return 0 if read > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
