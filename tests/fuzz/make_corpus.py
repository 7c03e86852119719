#!/usr/bin/env python3
"""Builds the seed corpus of one fuzz target from real files installed on this machine.

    make_corpus.py TARGET SOURCE_DIR OUT_DIR MAX_LEN

TARGET is nifti, npy, checkpoint or acdc_info. Seeds come from files that other programs wrote,
so the fuzzer starts from the layouts gcl meets in practice:
  nifti       gcl's nibabel-written fixtures, nibabel's test volumes (NIfTI-1, NIfTI-2, Analyze,
              4-D), the ITK example MRI volumes (insighttoolkit5-examples) and the MRIcron
              templates (mricron-data), each decompressed and cut to MAX_LEN, plus a gzip copy
  npy         NumPy-written arrays of every dtype gcl reads, versions 1 to 3, 0-d, empty and
              Fortran order, NumPy's and SciPy's own test files, gcl's PyTorch fixtures
  checkpoint  checkpoints built here byte by byte from docs/checkpoints.md (header, entries,
              CRC-32s), independently of gcl's writer
  acdc_info   Info.cfg files in the ACDC challenge's layout and spellings
Only what is installed is used; the files are read, never committed.
"""
import glob
import gzip
import hashlib
import io
import os
import struct
import sys
import zlib

target, source_dir, out_dir, max_len = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.makedirs(out_dir, exist_ok=True)
count = 0


def add(data: bytes) -> None:
    global count
    data = data[:max_len]
    name = hashlib.sha1(data).hexdigest()[:16]
    path = os.path.join(out_dir, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        count += 1


def smallest(pattern_list, limit):
    files = sorted({f for p in pattern_list for f in glob.glob(p, recursive=True) if os.path.isfile(f)},
                   key=lambda f: (os.path.getsize(f), f))
    return files[:limit]


def raw_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            # Only the start matters: the fuzzer's inputs are at most max_len long.
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                return g.read(max_len), True
        except (OSError, EOFError):
            return data, False
    return data, False


if target == "nifti":
    files = smallest([os.path.join(source_dir, "tests/fixtures/data/nifti/*.nii*"),
                      "/usr/lib/python3/dist-packages/nibabel/tests/data/*.nii",
                      "/usr/lib/python3/dist-packages/nibabel/tests/data/*.nii.gz",
                      "/usr/lib/python3/dist-packages/nibabel/tests/data/*.hdr",
                      "/usr/share/doc/insighttoolkit5-examples/examples/Data/*.nii*",
                      "/usr/share/mricron/templates/*.nii.gz"], 80)
    for f in files:
        data, was_gz = raw_bytes(f)
        add(data)
        # A complete gzip stream of the (cut) volume reaches the .nii.gz path with a valid stream.
        add(gzip.compress(data[: max_len // 2], mtime=0))

elif target == "npy":
    try:
        import numpy as np
        buf = io.BytesIO
        shapes = [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 2, 2, 2)]
        for dtype in ["<f4", "<f8", "<i8", "|u1", "<i4", ">f4"]:
            for shape in shapes:
                a = (np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) if shape else np.array(7, dtype=dtype))
                for version in [(1, 0), (2, 0), (3, 0)]:
                    b = buf()
                    np.lib.format.write_array(b, a, version=version)
                    add(b.getvalue())
                b = buf()
                np.lib.format.write_array(b, np.asfortranarray(a))
                add(b.getvalue())
    except ImportError:
        pass
    for f in smallest([os.path.join(source_dir, "tests/fixtures/**/*.npy"),
                       "/usr/lib/python3/dist-packages/numpy/lib/tests/data/*.npy",
                       "/usr/lib/python3/dist-packages/scipy/**/tests/data/*.npy"], 60):
        add(open(f, "rb").read())

elif target == "checkpoint":
    magic = bytes([0x89]) + b"GCL\r\n\x1a\n"
    dtypes = {"f4": (1, "<f"), "f8": (2, "<d"), "i8": (3, "<q"), "i4": (4, "<i"), "u1": (5, "<B")}

    def entry(name, kind, shape, values):
        code, fmt = dtypes[kind]
        data = b"".join(struct.pack(fmt, v) for v in values)
        out = struct.pack("<I", len(name)) + name.encode() + struct.pack("<BBH", code, len(shape), 0)
        out += b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<Q", len(data)) + data
        return out

    def checkpoint(entries):
        payload = b"".join(entries)
        head = magic + struct.pack("<IIQQI", 1, 0, len(entries), len(payload), zlib.crc32(payload))
        return head + struct.pack("<I", zlib.crc32(head)) + payload

    add(checkpoint([]))
    add(checkpoint([entry("param/w", "f4", [2, 3], [0.5 * i for i in range(6)])]))
    add(checkpoint([entry("param/enc.conv1.weight", "f4", [4, 1, 3, 3], [0.01 * i for i in range(36)]),
                    entry("param/enc.conv1.bias", "f4", [4], [0.0] * 4),
                    entry("buffer/enc.bn1.running_mean", "f4", [4], [0.1] * 4),
                    entry("optim/algorithm", "u1", [4], list(b"adam")),
                    entry("optim/step", "i8", [], [12]),
                    entry("optim/exp_avg/enc.conv1.bias", "f4", [4], [1e-3] * 4)]))
    add(checkpoint([entry("scalar/f8", "f8", [], [3.25]), entry("ids", "i4", [3], [1, 2, 3]),
                    entry("empty", "f4", [0, 5], []), entry("text", "u1", [5], list(b"hello"))]))

elif target == "acdc_info":
    for text in ["ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n",
                 "ED: 1\r\nES: 9\r\nGroup: NOR\r\nHeight: 160.5\r\nNbFrame: 28\r\nWeight: 58\r\n",
                 "ED:1\nES:10\nGroup:HCM\nHeight:175\nNbFrame:25\nWeight:80.2",
                 "ES: 14\nED: 1\n\nGroup: MINF\nHeight: 1.8e2\nNbFrame: 35\nWeight: 110.0\nExtra: kept out\n",
                 "ED: 1\nES: 12\nGroup: RV\n"]:
        add(text.encode())
else:
    sys.exit(f"make_corpus.py: unknown target {target}")

print(f"make_corpus: {count} seeds for {target} in {out_dir}")
