"""The NIfTI oracle of the fuzzing harness (scripts/fuzz/run.mjs), on nibabel.

  python3 nibabel_oracle.py seeds DIR   writes seed files (NIfTI-1/2, .nii/.nii.gz, several dtypes, scaling, qform-only)
  python3 nibabel_oracle.py serve       reads one file path per line, answers one JSON line per file:
      {"ok": true, "shape": [...], "sha": hex, "affine": [[...]]} or {"ok": false, "error": "Type: message"}
  sha is the SHA-1 of get_fdata() cast to float32 (row-major, NaNs and zeros canonical), as voxgrad's f32 tensor holds it.
"""
import hashlib
import json
import logging
import math
import os
import sys
import warnings
import zlib

import numpy as np
import nibabel as nib

warnings.simplefilter('ignore')
logging.getLogger('nibabel').setLevel(logging.CRITICAL)


def js_number(x):
    """A float as JSON: non-finite values as the strings JavaScript's Number() reads."""
    return x if math.isfinite(x) else ('NaN' if math.isnan(x) else ('Infinity' if x > 0 else '-Infinity'))
# voxels nibabel is asked to materialise (get_fdata is float64): larger claims are answered "too large", unread
MAX_VOXELS = 16_000_000


def f32_sha(data):
    a = np.ascontiguousarray(data, dtype=np.float32)
    a = np.where(np.isnan(a), np.float32(np.nan), a).astype(np.float32)
    bits = a.view(np.uint32).copy()
    bits[np.isnan(a)] = 0x7FC00000
    bits[a == 0] = 0  # -0.0 and 0.0 are the same value
    return hashlib.sha1(bits.tobytes()).hexdigest()


def load(path):
    """nib.load, or, where its format sniffing fails (bytes after a .nii.gz's gzip stream defeat it), the NIfTI class
    that sizeof_hdr names, as Nifti1Image.from_filename reads such a file. A NIfTI-2 file whose intent code is a
    CIFTI-2 one makes nib.load want a CIFTI-2 extension; it is read as the NIfTI-2 image it is."""
    try:
        return nib.load(path)
    except ValueError as e:
        if 'CIFTI-2 extension' not in str(e):
            raise
        return nib.Nifti2Image.from_filename(path)
    except nib.filebasedimages.ImageFileError as e:
        if not path.endswith('.gz'):
            raise
        head = zlib.decompressobj(31).decompress(open(path, 'rb').read(), 4)
        sizes = {int.from_bytes(head[:4], 'little'), int.from_bytes(head[:4], 'big')}
        cls = nib.Nifti1Image if 348 in sizes else nib.Nifti2Image if 540 in sizes else None
        if cls is None:
            raise e
        return cls.from_filename(path)


def read(path):
    try:
        img = load(path)
        if int(np.prod(img.shape, dtype=np.float64)) > MAX_VOXELS:
            return {'ok': None, 'error': f'too large for the oracle: shape {list(img.shape)}'}
        data = img.get_fdata()
        return {'ok': True, 'shape': list(data.shape), 'sha': f32_sha(data), 'affine': [[js_number(float(v)) for v in row] for row in np.asarray(img.affine, dtype=float)]}
    except MemoryError as e:
        return {'ok': None, 'error': f'MemoryError: {e}'}
    except Exception as e:  # every rejection is an answer
        return {'ok': False, 'error': f'{type(e).__name__}: {e}'}


def seeds(folder):
    rng = np.random.default_rng(12)
    os.makedirs(folder, exist_ok=True)
    rot = np.array([[0.0, -1, 0, 10], [1, 0, 0, -20], [0, 0, 1, 5], [0, 0, 0, 1]]) @ np.diag([1.5, 2.0, 2.5, 1.0])
    cases = [
        ('n1_f32', nib.Nifti1Image, rng.normal(size=(4, 3, 5)).astype(np.float32), rot, {}),
        ('n1_i16_scaled', nib.Nifti1Image, rng.integers(-300, 300, size=(3, 4, 2)).astype(np.int16), np.eye(4), {'slope': 0.5, 'inter': 3.0}),
        ('n1_u8_4d', nib.Nifti1Image, rng.integers(0, 255, size=(3, 2, 2, 3)).astype(np.uint8), np.diag([2.0, 2, 2, 1]), {}),
        ('n1_f64_2d', nib.Nifti1Image, rng.normal(size=(5, 4)), np.eye(4), {}),
        ('n1_qform_only', nib.Nifti1Image, rng.normal(size=(3, 3, 3)).astype(np.float32), rot, {'qform_only': True}),
        ('n2_f32', nib.Nifti2Image, rng.normal(size=(3, 4, 2)).astype(np.float32), rot, {}),
        ('n2_i32', nib.Nifti2Image, rng.integers(-1000, 1000, size=(2, 2, 3)).astype(np.int32), np.eye(4), {}),
    ]
    written = []
    for name, cls, data, affine, opts in cases:
        img = cls(data, affine)
        if opts.get('qform_only'):
            img.set_sform(None, code=0)
            img.set_qform(affine, code=1)
        if 'slope' in opts:
            img.header.set_slope_inter(opts['slope'], opts['inter'])
        for ext in ('.nii', '.nii.gz'):
            path = os.path.join(folder, name + ext)
            nib.save(img, path)
            written.append(path)
    print(json.dumps(written))


def serve():
    for line in sys.stdin:
        path = line.strip()
        if path:
            sys.stdout.write(json.dumps(read(path)) + '\n')
            sys.stdout.flush()


if __name__ == '__main__':
    if sys.argv[1] == 'seeds':
        seeds(sys.argv[2])
    else:
        serve()
