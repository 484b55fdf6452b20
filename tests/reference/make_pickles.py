#!/usr/bin/env python3
"""make_pickles.py — PyTorch checkpoint fixtures for the restricted unpickler.

Writes tests/fixtures/pickles/ (torch 2.3.1, safetensors):

  good.bin        torch.save of an OrderedDict: f32, f16, bf16, f64, i64, i32,
                  u8, bool tensors, a 0-d tensor, an empty tensor, two views
                  with storage offsets into one storage (shared), a
                  transposed (non-contiguous) view, an nn.Parameter
  good_p4.bin     the same with pickle_protocol=4 (FRAME, MEMOIZE,
                  STACK_GLOBAL, SHORT_BINUNICODE)
  module.bin      nn.Module.state_dict() (BUILD with the `_metadata` state)
  nested.bin      {'state_dict': <good's dict>, 'epoch': 3, 'note': 'x'}
  legacy.bin      good's dict with _use_new_zipfile_serialization=False
                  (the pre-1.6 format: refused with a message)
  expected.safetensors  every tensor of good.bin (contiguous copies, same
                  dtype) and of module.bin under "mod/<name>", as
                  torch.load(weights_only=True) returns them

Malicious files: each is a torch.save zip whose data.pkl, if loaded with
torch.load(weights_only=False), would run a command. They are written by
torch.save itself from an object whose __reduce__ names the callable, so
saving executes nothing; loading is what the unpickler must refuse.
  evil_system.bin   GLOBAL 'posix system' ('touch /tmp/spo-pwned-<TOKEN>')
  evil_eval.bin     GLOBAL 'builtins eval' of the same command
  evil_p4.bin       STACK_GLOBAL 'posix system' (pickle protocol 4)
  evil_storage.bin  a tensor whose persistent id names 'posix system' as
                    its storage type (crafted by hand)
TOKEN is fixed (MARKER below) so the C test can check the marker file does
not exist afterwards. The author checked once, in a throwaway process, that
torch.load(evil_system.bin, weights_only=False) does create the marker (and
removed it); this script never loads them (only pickletools disassembles).

Damaged files:
  truncated.bin     good.bin cut in half (no central directory)
  corrupt_pkl.bin   a torch-like zip whose data.pkl is 512 random bytes
  nopkl.bin         a zip without data.pkl
  missing_storage.bin  data.pkl names storage 9 that is not in the zip
  short_storage.bin    a storage member 4 bytes shorter than its numel says
  bad_crc.bin       good.bin with one byte of a storage flipped (zip CRC)
  bigendian.bin     good.bin with byteorder 'big'
  notzip.bin        text

Also writes tests/fuzz/corpus/unpickle/ seeds (raw data.pkl bytes).

Run:  /work/venv/bin/python tests/reference/make_pickles.py
"""
import collections
import io
import os
import pickle
import pickletools
import random
import sys
import zipfile

import torch
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "pickles")
SEEDS = os.path.join(ROOT, "tests", "fuzz", "corpus", "unpickle")
MARKER = "/tmp/spo-pwned-5c1e9a7d3b"  # keep in sync with tests/unit/test_ptbin.c
CMD = "touch " + MARKER


def state_dict():
    g = torch.Generator().manual_seed(7)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3, generator=g)
    sd["f16"] = torch.randn(4, generator=g).half()
    sd["bf16"] = torch.randn(3, 2, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, generator=g).double()
    sd["i64"] = torch.arange(-2, 3, dtype=torch.int64) * 1000003
    sd["i32"] = torch.tensor([-7, 0, 2147483647], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    big = torch.randn(20, generator=g)
    sd["view.a"] = big[4:10].view(2, 3)    # storage offset 4, shares `big`
    sd["view.b"] = big[12:18]              # storage offset 12, same storage
    sd["transposed"] = torch.randn(3, 4, generator=g).t()  # strides (1, 4)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["unicode.ünï"] = torch.ones(1)
    return sd


class Evil:
    """Pickles as a call of fn(arg); nothing runs when saving."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def write_zip(path, members, archive="archive"):
    """A zip laid out as torch.save does (STORED members under archive/)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:  # fixed time stamps: reruns give the same bytes
            z.writestr(zipfile.ZipInfo(f"{archive}/{name}", date_time=(1980, 1, 1, 0, 0, 0)), data)


def read_members(path):
    with zipfile.ZipFile(path) as z:
        return [(n.split("/", 1)[1], z.read(n)) for n in z.namelist()]


def pkl_of(path):
    with zipfile.ZipFile(path) as z:
        return z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(SEEDS, exist_ok=True)
    p = lambda n: os.path.join(OUT, n)
    sd = state_dict()

    torch.save(sd, p("good.bin"))
    torch.save(sd, p("good_p4.bin"), pickle_protocol=4)
    torch.manual_seed(3)
    mod = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    torch.save(mod.state_dict(), p("module.bin"))
    torch.save({"state_dict": sd, "epoch": 3, "note": "x"}, p("nested.bin"))
    torch.save(sd, p("legacy.bin"), _use_new_zipfile_serialization=False)

    # the reference: what torch's own safe loader returns
    ref = torch.load(p("good.bin"), weights_only=True)
    assert list(ref) == list(sd)
    for k in sd:
        assert torch.equal(ref[k], sd[k]), k
    exp = {k: v.detach().contiguous().clone() for k, v in ref.items()}
    mref = torch.load(p("module.bin"), weights_only=True)
    exp.update({"mod/" + k: v.detach().contiguous().clone() for k, v in mref.items()})
    save_file(exp, p("expected.safetensors"))

    # malicious checkpoints, written by torch.save itself
    torch.save({"w": torch.ones(2), "x": Evil(os.system, CMD)}, p("evil_system.bin"))
    torch.save({"w": torch.ones(2), "x": Evil(eval, f"__import__('os').system('{CMD}')")}, p("evil_eval.bin"))
    torch.save({"w": torch.ones(2), "x": Evil(os.system, CMD)}, p("evil_p4.bin"), pickle_protocol=4)
    # a persistent id whose "storage type" is os.system (crafted by hand)
    pk = (b"\x80\x02" b"ccollections\nOrderedDict\n)R"       # PROTO 2; OrderedDict()
          b"(X\x01\x00\x00\x00w"                                 # MARK 'w'
          b"ctorch._utils\n_rebuild_tensor_v2\n("                 # GLOBAL, MARK (args)
          b"(X\x07\x00\x00\x00storage" b"cposix\nsystem\n"        # MARK 'storage' <os.system>
          b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ"        # '0' 'cpu' 1 TUPLE BINPERSID
          b"K\x00K\x01\x85K\x01\x85\x89"                          # offset 0, (1,), (1,), False
          b"ccollections\nOrderedDict\n)R"                       # hooks
          b"tRu.")                                               # TUPLE REDUCE SETITEMS STOP
    write_zip(p("evil_storage.bin"), [("data.pkl", pk), ("data/0", b"\0" * 4), ("version", b"3\n")])
    for n in ("evil_system.bin", "evil_eval.bin", "evil_p4.bin", "evil_storage.bin"):
        dis = io.StringIO()
        pickletools.dis(pkl_of(p(n)), out=dis)
        assert "system" in dis.getvalue() or "eval" in dis.getvalue(), n
        assert not os.path.exists(MARKER)

    # damaged files
    good = open(p("good.bin"), "rb").read()
    open(p("truncated.bin"), "wb").write(good[: len(good) // 2])
    rnd = random.Random(11)
    members = read_members(p("good.bin"))
    write_zip(p("corrupt_pkl.bin"),
              [(n, bytes(rnd.randrange(256) for _ in range(512)) if n == "data.pkl" else d) for n, d in members])
    write_zip(p("nopkl.bin"), [(n, d) for n, d in members if n != "data.pkl"])
    small = collections.OrderedDict(a=torch.ones(3), b=torch.arange(4, dtype=torch.float32))
    buf = io.BytesIO()
    torch.save(small, buf)
    sm = read_members(io.BytesIO(buf.getvalue()))
    pkl = dict(sm)["data.pkl"]
    write_zip(p("missing_storage.bin"), [(n, d) for n, d in sm if n != "data/1"])
    write_zip(p("short_storage.bin"), [(n, d[:-4] if n == "data/1" else d) for n, d in sm])
    # flip one byte inside storage 1's data (stored, so it is in the file as is)
    raw = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        info = [i for i in z.infolist() if i.filename.endswith("/data/1")][0]
    # data offset: local header (30 bytes) + name + extra
    lh = info.header_offset
    nlen = int.from_bytes(raw[lh + 26: lh + 28], "little")
    xlen = int.from_bytes(raw[lh + 28: lh + 30], "little")
    raw[lh + 30 + nlen + xlen + 5] ^= 0x40
    open(p("bad_crc.bin"), "wb").write(bytes(raw))
    write_zip(p("bigendian.bin"), [(n, b"big" if n == "byteorder" else d) for n, d in sm])
    open(p("notzip.bin"), "w").write("this is not a checkpoint\n")

    # fuzz seeds: raw data.pkl of the good and evil files, and the small one
    for n in ("good.bin", "good_p4.bin", "module.bin", "nested.bin", "evil_system.bin", "evil_p4.bin",
              "evil_storage.bin"):
        open(os.path.join(SEEDS, n.replace(".bin", ".pkl")), "wb").write(pkl_of(p(n)))
    open(os.path.join(SEEDS, "small.pkl"), "wb").write(pkl)
    print("wrote", OUT, "and", SEEDS, "with torch", torch.__version__, file=sys.stderr)


if __name__ == "__main__":
    main()
