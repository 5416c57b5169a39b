"""Fuzz the frame decoder and the message codec with mutated wire frames.

Each trial takes one original frame (a valid message, or an arbitrary frame of any version, type and body
up to 255 bytes), mutates its wire bytes, and appends a unique *sentinel* frame. Trials are concatenated
into batches, cut into random chunks (single bytes up to kilobytes), fed through one FrameDecoder, and
every accepted frame goes through decode_message. The sentinels split the decoder's output back into
trials and prove resynchronisation: each one must come out intact.

Per trial the outcome is: *rejected* (no frame came out), *accepted-unchanged* (the original came out,
e.g. after an extra delimiter), *ACCEPTED-CORRUPTED* (a frame equal to no original came out) or a *crash*
(an exception other than the typed rejections). Trials whose outcome is guaranteed by construction are
counted separately; a corrupted frame among them is a *violation*, i.e. a bug.

    python tools/fuzz_codec.py [--frames 1000000] [--seed 0]

Exits non-zero on any crash, lost sentinel or violation.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_bridge import messages as msg
from firmware_bridge.codes import Capabilities, FaultReason, StatusFlags
from firmware_bridge.errors import FrameError, ProtocolError
from firmware_bridge.framing import MAX_BODY, Frame, FrameDecoder, encode_frame
from firmware_bridge.messages import MAX_ACTION_DIM, MAX_OBS_DIM

DELIMITER, CODE, DATA = 0, 1, 2  # role of each wire byte
SENTINEL_TYPE = 0xEE
BATCH = 2000  # trials per decoder feed sequence
# Chunk sizes for feeding: single bytes often, whole batches rarely.
CHUNK_SIZES = [1] * 6 + [2, 3, 5, 7, 16, 31, 64, 100, 255, 266, 512, 1024, 4096, 16384]

# Why each class can or cannot let a corrupted frame through. "Guaranteed" trials are those the first
# sentence covers; for the others the CRC (and the COBS rules, size check and length field) reject a
# re-cut frame with probability about 1 - 2^-16, not with certainty.
GUARANTEES = {
    "bit1": "guaranteed when the flipped byte is a COBS data byte that stays non-zero (1-bit payload error, "
            "CRC-16 detects all); a code byte, delimiter or new 00 re-cuts the frame: probabilistic",
    "bit2": "guaranteed when every flipped byte is a COBS data byte that stays non-zero (2-bit payload error, "
            "Hamming distance 4); otherwise probabilistic",
    "bit3": "guaranteed when every flipped byte is a COBS data byte that stays non-zero (3-bit payload error, "
            "Hamming distance 4); otherwise probabilistic",
    "burst": "2..16-bit bursts, MSB-first bit order: guaranteed when every changed byte is a COBS data byte that "
             "stays non-zero (a payload burst of <= 16 bits); otherwise probabilistic",
    "insert": "one random byte inserted: not guaranteed (the COBS blocks are re-cut)",
    "delete": "one byte deleted: not guaranteed (the COBS blocks are re-cut)",
    "truncate": "frame cut short, next frame follows: guaranteed (a strict prefix of the encoding is invalid COBS, "
                "or decodes to a strict prefix of the payload that disagrees with its length field, or - cut "
                "right after a final 0xFF block - to the whole payload)",
    "splice": "1..64 random bytes before the frame: the frame itself is guaranteed; the garbage can pass as a "
              "frame with probability ~2^-16 x P(valid COBS and length field)",
    "delimiters": "delimiters repeated: guaranteed unchanged (empty chunks are ignored)",
}
CLASSES = list(GUARANTEES)


@dataclass
class Original:
    frame: Frame
    wire: bytes
    roles: bytes


@dataclass
class Counts:
    """Outcomes of the trials of one mutation class (or of all)."""

    frames: int = 0  # trials judged
    guaranteed: int = 0  # trials whose outcome holds by construction
    rejected: int = 0  # no frame came out
    unchanged: int = 0  # the original came out, and nothing else
    corrupted: int = 0  # a frame equal to no original came out
    corrupted_valid_message: int = 0  # ... and it passed decode_message too
    crashes: int = 0  # an exception other than the typed rejections
    violations: int = 0  # corrupted although guaranteed: a bug
    examples: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        for name, _, _ in COLUMNS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self, label: str) -> str:
        return f"{label:<11}" + "".join(f"{getattr(self, name):>{width}}" for name, _, width in COLUMNS)


# The report's columns: counter, title, width.
COLUMNS = [("frames", "frames", 9), ("guaranteed", "guaranteed", 12), ("rejected", "rejected", 10),
           ("unchanged", "unchanged", 11), ("corrupted", "CORRUPTED", 11),
           ("corrupted_valid_message", "(valid msg)", 12), ("crashes", "crashes", 9), ("violations", "violations", 12)]


@dataclass
class Trial:
    original: Original
    cls: str
    mutated: bytes
    guaranteed: bool


# ----- originals ---------------------------------------------------------------------------------------


def _f32(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.1:
        return rng.choice([0.0, -0.0, 1.0, -1.0, float("inf")])
    return struct.unpack("<f", struct.pack("<f", rng.uniform(-1e3, 1e3)))[0]


def _random_message(rng: random.Random) -> msg.Message:
    kind = rng.randrange(7)
    u16, u32 = rng.randrange(0x10000), rng.randrange(0x1_0000_0000)
    if kind == 0:
        return rng.choice(list(msg.BODYLESS.values()))()
    if kind == 1:
        n = rng.randint(0, MAX_ACTION_DIM)
        return msg.InfoMsg(u16, rng.randint(0, MAX_OBS_DIM), n, Capabilities(rng.randrange(4)), u32,
                       rng.randrange(0x10000), tuple(_f32(rng) for _ in range(n)), tuple(_f32(rng) for _ in range(n)),
                       "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(0, 32))))
    if kind == 2:
        return msg.ActionMsg(tuple(_f32(rng) for _ in range(rng.randint(1, MAX_ACTION_DIM))))
    if kind == 3:
        return msg.ObservationMsg(u16, u32, StatusFlags(rng.randrange(64)),
                              tuple(_f32(rng) for _ in range(rng.randint(1, MAX_OBS_DIM))))
    if kind == 4:
        return msg.StatusMsg(u16, u32, StatusFlags(rng.randrange(64)))
    return msg.FaultMsg(rng.choice(list(FaultReason)), rng.randrange(256), u16, u32, StatusFlags(rng.randrange(64)))


def _random_frame(rng: random.Random) -> Frame:
    n = rng.randint(0, MAX_BODY)
    # A third of the bodies are zeros and one-bit bytes: many COBS blocks, many ways to re-cut.
    structured = rng.random() < 0.3
    body = bytes(rng.choice((0, 0, 1, 2, 0x80, 0xFF)) for _ in range(n)) if structured else rng.randbytes(n)
    return Frame(rng.randrange(256), rng.randrange(0x10000), body, rng.choice((1, 1, 1, rng.randrange(256))))


def _roles(wire: bytes) -> bytes:
    roles = bytearray([DATA]) * len(wire)
    roles[0] = roles[-1] = DELIMITER
    i = 1
    while i < len(wire) - 1:
        roles[i] = CODE
        i += wire[i]
    return bytes(roles)


def make_originals(rng: random.Random, count: int) -> list[Original]:
    originals = []
    for k in range(count):
        if k % 5 < 3:  # 60 % valid messages, 40 % arbitrary frames
            wire = msg.encode_message(_random_message(rng), rng.randrange(0x10000))
            frame = FrameDecoder().feed(wire)[0]
            assert isinstance(frame, Frame)
        else:
            frame = _random_frame(rng)
            wire = encode_frame(frame)
        originals.append(Original(frame, wire, _roles(wire)))
    return originals


# ----- mutations ----------------------------------------------------------------------------------------


def _payload_mapped(original: Original, mutated: bytearray, positions: set[int]) -> bool:
    """True if every changed byte is a COBS data byte that stays non-zero: the payload gets the same bit errors."""
    return all(original.roles[i] == DATA and mutated[i] != 0 for i in positions)


def _flip_bits(rng: random.Random, original: Original, n: int) -> tuple[bytes, bool]:
    mutated = bytearray(original.wire)
    bits = rng.sample(range(8 * len(mutated)), n)
    for bit in bits:
        mutated[bit >> 3] ^= 0x80 >> (bit & 7)
    return bytes(mutated), _payload_mapped(original, mutated, {bit >> 3 for bit in bits})


def bit1(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    return _flip_bits(rng, original, 1)


def bit2(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    return _flip_bits(rng, original, 2)


def bit3(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    return _flip_bits(rng, original, 3)


def burst(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    mutated = bytearray(original.wire)
    length = rng.randint(2, 16)
    start = rng.randrange(8 * len(mutated) - length + 1)
    # First and last bit always flip (that is what makes it a burst of this length); the ones between at random.
    pattern = 1 | (1 << (length - 1)) | (rng.getrandbits(length) if length > 2 else 0)
    touched = set()
    for k in range(length):
        if pattern >> k & 1:
            bit = start + k
            mutated[bit >> 3] ^= 0x80 >> (bit & 7)
            touched.add(bit >> 3)
    return bytes(mutated), _payload_mapped(original, mutated, touched)


def insert(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    at = rng.randint(0, len(original.wire))
    byte = 0 if rng.random() < 0.1 else rng.randint(1, 255)
    return original.wire[:at] + bytes([byte]) + original.wire[at:], False


def delete(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    at = rng.randrange(len(original.wire))
    return original.wire[:at] + original.wire[at + 1 :], False


def truncate(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    return original.wire[: rng.randint(1, len(original.wire) - 2)], True  # keeps 00 and a strict prefix of E


def splice(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    n = rng.randint(1, 64)
    garbage = rng.randbytes(n) if rng.random() < 0.5 else bytes(rng.randint(1, 255) for _ in range(n))
    return garbage + original.wire, False


def delimiters(rng: random.Random, original: Original) -> tuple[bytes, bool]:
    lead, trail = rng.randint(0, 3), rng.randint(0, 3) or 1
    return b"\x00" * lead + original.wire + b"\x00" * trail, True


MUTATORS: dict[str, Callable[[random.Random, Original], tuple[bytes, bool]]] = {
    "bit1": bit1, "bit2": bit2, "bit3": bit3, "burst": burst, "insert": insert, "delete": delete,
    "truncate": truncate, "splice": splice, "delimiters": delimiters,
}


# ----- running ------------------------------------------------------------------------------------------


def _sentinel(k: int) -> Frame:
    return Frame(SENTINEL_TYPE, k & 0xFFFF, k.to_bytes(4, "little"))


def _judge(trial: Trial, segment: list[object], counts: Counts) -> None:
    """Classify what the decoder produced between this trial's start and its sentinel."""
    counts.frames += 1
    counts.guaranteed += trial.guaranteed
    original = trial.original.frame
    corrupted: list[Frame] = []
    seen_original = False
    for item in segment:
        if isinstance(item, FrameError):
            continue
        if not isinstance(item, Frame):
            counts.crashes += 1
            counts.examples.append(f"crash: decoder returned {item!r}")
            return
        try:
            msg.decode_message(item)
            valid = True
        except ProtocolError:
            valid = False
        except Exception as error:  # any other exception is a crash
            counts.crashes += 1
            counts.examples.append(f"crash: decode_message raised {error!r} for {item!r}")
            return
        if item == original:
            seen_original = True
        else:
            corrupted.append(item)
            counts.corrupted_valid_message += valid
    if corrupted:
        counts.corrupted += 1
        counts.violations += trial.guaranteed
        if len(counts.examples) < 5:
            counts.examples.append(f"original {trial.original.wire.hex()} mutated {trial.mutated.hex()} "
                                   f"accepted {corrupted}")
    elif seen_original:
        counts.unchanged += 1
    else:
        counts.rejected += 1


def _feed(stream: bytes, rng: random.Random) -> list[Frame | FrameError]:
    decoder = FrameDecoder()
    results: list[Frame | FrameError] = []
    i, n = 0, len(stream)
    while i < n:
        size = rng.choice(CHUNK_SIZES)
        results += decoder.feed(stream[i : i + size])
        i += size
    return results


def run_batch(trials: list[Trial], first: int, rng: random.Random, counts: dict[str, Counts]) -> int:
    """Feed ``trials`` as one stream; returns the number of sentinels that did not come out."""
    sentinels = [_sentinel(first + k) for k in range(len(trials))]
    stream = b"".join(trial.mutated + encode_frame(sentinel) for trial, sentinel in zip(trials, sentinels, strict=True))
    try:
        results = _feed(stream, rng)
    except Exception:  # find the trial that crashed, one by one
        lost = 0
        for k, trial in enumerate(trials):
            try:
                results = _feed(trial.mutated + encode_frame(sentinels[k]), rng)
            except Exception as error:
                counts[trial.cls].frames += 1
                counts[trial.cls].crashes += 1
                counts[trial.cls].examples.append(f"crash: feed raised {error!r} on {trial.mutated.hex()}")
                continue
            lost += run_batch([trial], first + k, rng, counts)
        return lost
    k, segment = 0, []
    for item in results:
        if k < len(trials) and type(item) is Frame and item.type == SENTINEL_TYPE and item == sentinels[k]:
            _judge(trials[k], segment, counts[trials[k].cls])
            k, segment = k + 1, []
        else:
            segment.append(item)
    return len(trials) - k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="mutated frames to feed (default 1e6)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    originals = make_originals(rng, 4096)
    counts = {cls: Counts() for cls in CLASSES}
    lost = 0
    start = time.perf_counter()
    for first in range(0, args.frames, BATCH):
        trials = []
        for k in range(first, min(first + BATCH, args.frames)):
            cls = CLASSES[k % len(CLASSES)]
            original = rng.choice(originals)
            mutated, guaranteed = MUTATORS[cls](rng, original)
            trials.append(Trial(original, cls, mutated, guaranteed))
        lost += run_batch(trials, first, rng, counts)
    elapsed = time.perf_counter() - start

    total = Counts()
    print(f"fuzz_codec: {args.frames} mutated frames, seed {args.seed}, {len(originals)} originals "
          f"(60 % valid messages, 40 % arbitrary frames), random chunking 1..{max(CHUNK_SIZES)} bytes")
    header = f"{'class':<11}" + "".join(f"{title:>{width}}" for _, title, width in COLUMNS)
    print(header)
    print("-" * len(header))
    for cls in CLASSES:
        print(counts[cls].row(cls))
        total.add(counts[cls])
    print("-" * len(header))
    print(total.row("total"))
    print(f"sentinels lost (resync failures): {lost}")
    print(f"{elapsed:.1f} s, {args.frames / elapsed:,.0f} mutated frames/s")
    print()
    print("guaranteed: trials whose outcome holds by construction; a CORRUPTED one there is a violation (a bug).")
    print("CORRUPTED: a decoded frame equal to no original; (valid msg): how many of them also passed "
          "decode_message.")
    for cls in CLASSES:
        print(f"  {cls:<11}{GUARANTEES[cls]}")
    examples = [f"  [{cls}] {line}" for cls in CLASSES for line in counts[cls].examples]
    if examples:
        print("examples:")
        print("\n".join(examples[:20]))
    return 1 if total.crashes or total.violations or lost else 0


if __name__ == "__main__":
    sys.exit(main())
