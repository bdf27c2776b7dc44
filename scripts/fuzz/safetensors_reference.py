"""A reference safetensors reader for the fuzzing harness: the validation rules of the official Rust crate (0.4),
written from its source, since the official Python package is not installed here. Reads one path per line on stdin,
answers one JSON line: {"ok": true, "tensors": [[name, dtype, shape], ...]} (sorted by name) or {"ok": false, "error"}.
"""
import json
import struct
import sys

MAX_HEADER = 100_000_000
BITS = {'BOOL': 8, 'U8': 8, 'I8': 8, 'F8_E5M2': 8, 'F8_E4M3': 8, 'I16': 16, 'U16': 16, 'F16': 16, 'BF16': 16,
        'I32': 32, 'U32': 32, 'F32': 32, 'F64': 64, 'I64': 64, 'U64': 64}
USIZE_MAX = 2 ** 64 - 1


class Invalid(Exception):
    pass


def usize(v, what):
    # serde's usize: a JSON integer token (not a float, not a bool) in [0, 2^64)
    if type(v) is not int or not 0 <= v <= USIZE_MAX:
        raise Invalid(f'{what} is not a usize: {v!r}')
    return v


def no_constants(name):
    raise Invalid(f'{name} is not JSON')


def read(path):
    buf = open(path, 'rb').read()
    if len(buf) < 8:
        raise Invalid('HeaderTooSmall')
    n = struct.unpack('<Q', buf[:8])[0]
    if n > MAX_HEADER:
        raise Invalid('HeaderTooLarge')
    if 8 + n > len(buf):
        raise Invalid('InvalidHeaderLength')
    try:
        text = buf[8:8 + n].decode('utf-8')
    except UnicodeDecodeError:
        raise Invalid('InvalidHeader (utf-8)')
    if not text.startswith('{'):
        raise Invalid('InvalidHeaderStart')
    try:
        header = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as e:
        raise Invalid(f'InvalidHeaderDeserialization: {e}')
    if not isinstance(header, dict):
        raise Invalid('InvalidHeaderDeserialization: not an object')
    meta = header.pop('__metadata__', None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise Invalid('InvalidHeaderDeserialization: __metadata__')
    tensors = []
    for name, info in header.items():
        if not isinstance(info, dict) or not {'dtype', 'shape', 'data_offsets'} <= info.keys():
            raise Invalid(f'InvalidHeaderDeserialization: {name}')
        if info['dtype'] not in BITS:
            raise Invalid(f'InvalidHeaderDeserialization: dtype of {name}')
        if not isinstance(info['shape'], list):
            raise Invalid(f'InvalidHeaderDeserialization: shape of {name}')
        shape = [usize(d, f'shape of {name}') for d in info['shape']]
        offsets = info['data_offsets']
        if not isinstance(offsets, list) or len(offsets) != 2:
            raise Invalid(f'InvalidHeaderDeserialization: data_offsets of {name}')
        begin, end = (usize(o, f'data_offsets of {name}') for o in offsets)
        tensors.append((begin, end, name, info['dtype'], shape))
    start = 0
    for begin, end, name, dtype, shape in sorted(tensors, key=lambda t: (t[0], t[1])):
        if begin != start or end < begin:
            raise Invalid(f'InvalidOffset({name})')
        start = end
        count = 1
        for d in shape:
            count *= d
            if count > USIZE_MAX:
                raise Invalid('ValidationOverflow')
        if count * BITS[dtype] > USIZE_MAX:
            raise Invalid('ValidationOverflow')
        if end - begin != count * BITS[dtype] // 8:
            raise Invalid(f'TensorInvalidInfo({name})')
    if start + 8 + n != len(buf):
        raise Invalid('MetadataIncompleteBuffer')
    return sorted([name, dtype, shape] for _, _, name, dtype, shape in tensors)


for line in sys.stdin:
    path = line.strip()
    if path:
        try:
            answer = {'ok': True, 'tensors': read(path)}
        except Invalid as e:
            answer = {'ok': False, 'error': str(e)}
        sys.stdout.write(json.dumps(answer) + '\n')
        sys.stdout.flush()
