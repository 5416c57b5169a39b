"""How often a corrupted ACTION frame is accepted: the residual risk of CRC-16 on commands that move actuators.

Each trial encodes one ACTION (1 to 6 float32 values in [-10, 10], a random sequence number) with the
codec, corrupts its wire bytes, and feeds them with a closing delimiter to a fresh ``FrameDecoder``; every
frame that comes out goes through ``decode_message``. A trial is *accepted-corrupted* when a message
comes out that is not the one sent (``ACTION`` if that message is an ACTION). Corruptions:

- ``bitsK``: K distinct random bits of the wire flipped (delimiters included);
- ``bytesK``: K distinct random wire bytes replaced by other random values;
- ``ber``: every bit flipped independently with probability ``--ber`` (a noisy line; most frames arrive
  intact), so its rate is per frame sent, the others' per corrupted frame.

    python tools/measure_command_crc.py [--trials 200000] [--seed 0] [--ber 1e-3]

Prints one row per corruption: trials, accepted-corrupted, of them ACTION, and the rate with its 95 %
upper bound (the rule of three when none was seen).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import struct
from collections.abc import Callable

from firmware_bridge import messages as msg
from firmware_bridge.errors import ProtocolError
from firmware_bridge.framing import FrameDecoder

Corrupt = Callable[[random.Random, bytes], bytes]


def random_action(rng: random.Random) -> msg.ActionMsg:
    values = [rng.uniform(-10, 10) for _ in range(rng.randint(1, 6))]
    return msg.ActionMsg(tuple(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values))))


def flip_bits(k: int) -> Corrupt:
    def corrupt(rng: random.Random, wire: bytes) -> bytes:
        out = bytearray(wire)
        for bit in rng.sample(range(8 * len(wire)), k):
            out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)
    return corrupt


def replace_bytes(k: int) -> Corrupt:
    def corrupt(rng: random.Random, wire: bytes) -> bytes:
        out = bytearray(wire)
        for i in rng.sample(range(len(wire)), k):
            out[i] = (out[i] + rng.randint(1, 255)) % 256  # a different value
        return bytes(out)
    return corrupt


def noisy_line(ber: float) -> Corrupt:
    def corrupt(rng: random.Random, wire: bytes) -> bytes:
        out = bytearray(wire)
        bit = int(rng.expovariate(ber)) if ber > 0 else len(wire) * 8
        while bit < 8 * len(wire):
            out[bit // 8] ^= 1 << (bit % 8)
            bit += 1 + int(rng.expovariate(ber))
        return bytes(out)
    return corrupt


def received(wire: bytes) -> list[msg.Message]:
    """The messages a receiver takes from these bytes (a delimiter after them, as the next frame brings)."""
    out = []
    for frame in FrameDecoder().feed(wire + b"\x00"):
        if not isinstance(frame, Exception):
            with contextlib.suppress(ProtocolError):  # a CRC-valid frame whose message is refused
                out.append(msg.decode_message(frame))
    return out


def measure(corrupt: Corrupt, trials: int, rng: random.Random) -> tuple[int, int]:
    """(accepted-corrupted trials, of them with an ACTION that was not sent)."""
    accepted = actions = 0
    for _ in range(trials):
        sent = random_action(rng)
        wrong = [m for m in received(corrupt(rng, msg.encode_message(sent, rng.randrange(1 << 16)))) if m != sent]
        accepted += bool(wrong)
        actions += any(isinstance(m, msg.ActionMsg) for m in wrong)
    return accepted, actions


def upper_95(events: int, trials: int) -> float:
    """95 % upper confidence bound of a rate (rule of three for zero events, else normal approximation)."""
    if events == 0:
        return 3.0 / trials
    rate = events / trials
    return rate + 1.96 * (rate * (1 - rate) / trials) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200_000, help="frames per corruption")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ber", type=float, default=1e-3, help="bit error rate of the noisy line")
    args = parser.parse_args()
    corruptions: dict[str, Corrupt] = {f"bits{k}": flip_bits(k) for k in (1, 2, 3, 4, 8)}
    corruptions |= {f"bytes{k}": replace_bytes(k) for k in (1, 2, 4, 8)}
    corruptions["ber"] = noisy_line(args.ber)
    print("| corruption | trials | accepted corrupted | of them ACTION | rate | 95 % upper bound |")
    print("|---|---|---|---|---|---|")
    for name, corrupt in corruptions.items():
        accepted, actions = measure(corrupt, args.trials, random.Random(f"{args.seed}-{name}"))
        print(f"| {name} | {args.trials} | {accepted} | {actions} | {accepted / args.trials:.2e} | "
              f"{upper_95(accepted, args.trials):.2e} |", flush=True)


if __name__ == "__main__":
    main()
