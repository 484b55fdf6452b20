#!/usr/bin/env python3
"""check_ptbin_write.py — lib/ckpt/ptbin_write.h against torch.save (torch 2.3.1).

Two uses, by hand (never at build or test time):

  check_ptbin_write.py --fixture tests/fixtures/pickles/torch_ref.bin
      torch.save(reference_state_dict(), ...): the file test_ptbin_write.c
      compares its own output with, byte for byte.

  SPO_PTW_KEEP=/tmp/ptw build/rel/tests/test_ptbin_write
  check_ptbin_write.py /tmp/ptw
      loads every file the C test left there with
      torch.load(path, weights_only=True), compares each tensor (name order,
      dtype, shape, values bit for bit) with the state dict this script
      builds from the same formulas, then torch.saves that state dict under
      the same file name in a scratch folder and compares the two files
      byte for byte.

The formulas below are mirrored in tests/unit/test_ptbin_write.c; the
values are exact in float32 (small integers times powers of two), the
f16/bf16 ones are rounded from float32 (ties included) by each side.

Result (torch 2.3.1+cu121, CPU): all three C-written files load with
weights_only=True, every tensor equal, names in order, and every file
identical to torch.save's:
    torch_ref.bin  (42 tensors: every dtype, 0-d, empty, 5-d, LONG1 sizes,
                    > 256 memo entries, a non-ASCII name)  equal, identical
    all_dtypes.bin (12 tensors)                            equal, identical
    many.bin       (1001 tensors: two SETITEMS batches)    equal, identical
Also checked once by hand (4 GiB, not kept): a u8 tensor of 2^32 + 100
elements followed by a small f32 one — zip64 extra fields, 24-byte data
descriptors, a member at an offset past 4 GiB — identical to torch.save's.
"""
import collections
import os
import sys
import tempfile

import torch

OTHERS = [torch.float64, torch.int32, torch.int16, torch.int8, torch.uint8]


def f32(vals):
    return torch.tensor(vals, dtype=torch.float64).to(torch.float32)


def reference_state_dict():
    """42 tensors: kind i % 8 of layer i, then a bool and a non-ASCII name."""
    sd = collections.OrderedDict()
    for i in range(40):
        k = i % 8
        name = f"layer{i}.k{k}"
        if k == 0:
            t = f32([(j * 2 - 5) * 0.125 + i for j in range(6)]).reshape(2, 3)
        elif k == 1:  # f16 spacing near 1 is 2^-10: rounding and ties
            t = f32([(1 + (j * 5 + i) * 2.0**-14) * (-1) ** j for j in range(4)]).to(torch.float16)
        elif k == 2:  # bf16 spacing near 1 is 2^-7
            t = f32([(1 + (j * 7 + i) * 2.0**-12) * (-1) ** j for j in range(6)]).reshape(3, 2).to(torch.bfloat16)
        elif k == 3:
            t = torch.tensor([i * 1000003 - j * (1 << 40) for j in range(3)], dtype=torch.int64)
        elif k == 4:
            t = torch.tensor(i + 0.5, dtype=torch.float32)
        elif k == 5:  # sizes beyond 2^31 are pickled as LONG1
            t = torch.zeros(0, 3000000000) if i == 5 else torch.zeros(2, 0, 3, dtype=torch.float16)
        elif k == 6:
            t = f32([j * 0.5 - i for j in range(8)]).reshape(1, 2, 1, 2, 2)
        else:
            t = torch.tensor([j * 3 + i // 8 - 2 for j in range(3)], dtype=OTHERS[(i // 8) % 5])
        sd[name] = t
    sd["flags"] = torch.tensor([True, False, True])
    sd["\u00fcn\u00ef.\U0001F600"] = f32([7.0])
    return sd


def all_dtypes_state_dict():
    """One tensor per dtype the writer takes, plus a 0-d and an empty one."""
    sd = collections.OrderedDict()
    sd["f32"] = f32([j * 0.25 - 1 for j in range(6)]).reshape(2, 3)
    sd["f16"] = f32([j / 8 + 2.0**-13 for j in range(4)]).to(torch.float16)
    sd["bf16"] = f32([j * 1.5 + 2.0**-9 for j in range(6)]).reshape(3, 2).to(torch.bfloat16)
    sd["f64"] = torch.tensor([0.1, -2.5], dtype=torch.float64)
    sd["i64"] = torch.tensor([-(1 << 62), 0, 1 << 62], dtype=torch.int64)
    sd["i32"] = torch.tensor([-7, 8, 9], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False])
    sd["scalar"] = torch.tensor(-3.25, dtype=torch.float32)
    sd["empty"] = torch.zeros(0, 4)
    return sd


def many_state_dict():
    """1001 tensors: a SETITEMS batch of 1000 and a lone SETITEM."""
    return collections.OrderedDict((f"t{i}", torch.full((i % 3,), float(i))) for i in range(1001))


CASES = {"torch_ref.bin": reference_state_dict, "all_dtypes.bin": all_dtypes_state_dict, "many.bin": many_state_dict}


def same(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.is_floating_point:  # bits, so -0.0 and NaN count
        view = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        return torch.equal(a.contiguous().view(view), b.contiguous().view(view))
    return torch.equal(a, b)


def check(folder):
    ok = True
    for file, make in CASES.items():
        path = os.path.join(folder, file)
        want = make()
        got = torch.load(path, weights_only=True)
        names_ok = list(got.keys()) == list(want.keys())
        bad = [k for k in want if k not in got or not same(got[k], want[k])]
        with tempfile.TemporaryDirectory() as tmp:
            ref = os.path.join(tmp, file)
            torch.save(want, ref)
            identical = open(ref, "rb").read() == open(path, "rb").read()
        print(f"{file}: {len(got)} tensors, names in order: {names_ok}, unequal: {bad or 'none'}, "
              f"identical to torch.save: {identical}")
        ok = ok and names_ok and not bad and identical
    print("torch", torch.__version__, "OK" if ok else "FAILED")
    return ok


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--fixture":
        torch.save(reference_state_dict(), sys.argv[2])
        print("wrote", sys.argv[2])
        return 0
    if len(sys.argv) == 2:
        return 0 if check(sys.argv[1]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
