"""Write the seed corpus of the firmware fuzzer (firmware_bridge/firmware/fuzz/) from the protocol vectors.

One seed per wire chunk of the vectors (every valid frame, the largest frames, every invalid chunk), and
host sessions made of the valid frames: HELLO, RESET, then each ACTION with HEARTBEAT, ESTOP, CLEAR and
RESET between them. The harness reads a seed's first byte as its form: 0, the wire bytes; 1, records of
(body length, version, type, seq low, seq high, body) that it frames itself, with a valid CRC, so that
mutated messages pass the CRC check and reach the dispatch. Every session is written in both forms.
The seeds follow the vectors, so they keep up with any change of the messages' fields
(tools/make_protocol_vectors.py regenerates both sides' contract).

Usage: ``python tools/make_fuzz_corpus.py OUT_DIR [--vectors PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "firmware_bridge" / "vectors" / "protocol_vectors.json"
# What a host sends, in the order a session sends it (ACTION repeats).
SESSION_ORDER = ("HELLO", "RESET", "ACTION", "HEARTBEAT", "ACTION", "ESTOP", "ACTION", "CLEAR", "RESET", "ACTION")


WIRE, RECORDS = b"\x00", b"\x01"  # the seed's first byte: its form


def record(frame: dict) -> bytes:
    """A valid frame of the vectors as the harness's record: body length, version, type, seq, body."""
    body = bytes.fromhex(frame["body_hex"])
    return bytes([len(body), frame["version"], frame["type"]]) + frame["seq"].to_bytes(2, "little") + body


def seeds(vectors: dict) -> list[bytes]:
    """Every wire chunk of the vectors, then sessions that interleave the host's messages, in both forms."""
    chunks = [WIRE + bytes.fromhex(v["wire_hex"]) for group in ("frames", "framing", "invalid")
              for v in vectors[group]]
    by_type: dict[str, list[dict]] = {}
    for v in vectors["frames"]:
        by_type.setdefault(v["type_name"], []).append(v)
    sessions = []
    for i, action in enumerate(by_type.get("ACTION", [])):
        picks = [action if name == "ACTION" else by_type[name][i % len(by_type[name])] for name in SESSION_ORDER
                 if name in by_type]
        sessions.append(WIRE + b"".join(bytes.fromhex(f["wire_hex"]) for f in picks))
        sessions.append(RECORDS + b"".join(record(f) for f in picks))
    return chunks + sessions


def write_corpus(out: Path, vectors_path: Path = VECTORS) -> int:
    """Write each seed as a file named by its hash (libFuzzer's convention); returns how many."""
    out.mkdir(parents=True, exist_ok=True)
    written = {hashlib.sha1(seed).hexdigest(): seed for seed in seeds(json.loads(vectors_path.read_text()))}
    for name, seed in written.items():
        (out / name).write_bytes(seed)
    return len(written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="the corpus folder to fill")
    parser.add_argument("--vectors", type=Path, default=VECTORS)
    args = parser.parse_args()
    print(f"{write_corpus(args.out, args.vectors)} seeds in {args.out}")


if __name__ == "__main__":
    main()
