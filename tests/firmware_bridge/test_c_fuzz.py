"""The firmware fuzzer (firmware_bridge/firmware/fuzz/): its seeds are the protocol vectors in both of the
harness's forms, and the harness (built with clang's libFuzzer) passes every seed. The ≈30 s fuzzing run
itself is ``make -C firmware_bridge/firmware fuzz`` in ``.ci/run``."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from firmware_bridge.framing import Frame, encode_frame

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware_bridge" / "firmware"
VECTORS = json.loads((ROOT / "firmware_bridge" / "vectors" / "protocol_vectors.json").read_text())


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fuzz_corpus", ROOT / "tools" / "make_fuzz_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


corpus = _load_tool()


def wire_of_records(records: bytes) -> bytes:
    """What the harness makes of records: (n, version, type, seq low, seq high, n body bytes) -> wire."""
    wire, at = b"", 0
    while at + 5 <= len(records):
        n, version, type_code = records[at : at + 3]
        seq = int.from_bytes(records[at + 3 : at + 5], "little")
        wire += encode_frame(Frame(type_code, seq, records[at + 5 : at + 5 + n], version))
        at += 5 + n
    return wire


def test_every_vector_chunk_is_a_seed_and_sessions_come_in_both_forms():
    seeds = corpus.seeds(VECTORS)
    wire_seeds = {s[1:] for s in seeds if s[:1] == corpus.WIRE}
    chunks = {bytes.fromhex(v["wire_hex"]) for group in ("frames", "framing", "invalid") for v in VECTORS[group]}
    assert chunks <= wire_seeds
    sessions = [s[1:] for s in seeds if s[:1] == corpus.RECORDS]
    actions = [v for v in VECTORS["frames"] if v["type_name"] == "ACTION"]
    assert len(sessions) == len(actions) > 0
    for records in sessions:  # the record form frames to exactly the wire form of the same session
        assert wire_of_records(records) in wire_seeds


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang (libFuzzer)")
def test_the_fuzz_harness_passes_every_seed(tmp_path):
    built = subprocess.run(["make", "-C", str(FIRMWARE), "build/fuzz_firmware"], capture_output=True, text=True,
                           timeout=240, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    written = corpus.write_corpus(tmp_path / "seeds")
    ran = subprocess.run([str(FIRMWARE / "build" / "fuzz_firmware"), "-runs=0", f"-artifact_prefix={tmp_path}/",
                          str(tmp_path / "seeds")], capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "INITED cov:" in ran.stderr and f"{written} files found" in ran.stderr
