"""The committed protocol vectors: the Python codec reproduces them, and they are what the generator makes now."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from firmware_bridge import cobs, codes, errors, framing, messages
from firmware_bridge.framing import Frame, FrameDecoder, crc16, decode_payload, encode_frame, encode_payload
from firmware_bridge.messages import decode_message, encode_body, encode_message

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "firmware_bridge" / "vectors" / "protocol_vectors.json"
GENERATOR = ROOT / "tools" / "make_protocol_vectors.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_protocol_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
DOC: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))


def _ids(section: str) -> list[str]:
    return [v["name"] for v in DOC[section]]


def _params(section: str) -> Any:
    return pytest.mark.parametrize("vector", DOC[section], ids=_ids(section))


def test_codec_agrees_with_the_specification_examples() -> None:
    """CRC check value, the COBS paper's example and the worked frames of docs/protocol.md."""
    gen.check_known_answers()


def test_committed_file_is_what_the_generator_makes() -> None:
    assert VECTORS.read_text(encoding="utf-8") == gen.render(gen.build_vectors())


def test_generator_is_deterministic() -> None:
    assert gen.render(gen.build_vectors()) == gen.render(gen.build_vectors())


def test_file_is_flat() -> None:
    """Only what the C reader parses: scalars and arrays of objects of strings, numbers, arrays of numbers."""
    for key, value in DOC.items():
        if not isinstance(value, list):
            assert isinstance(value, str | int), key
            continue
        for row in value:
            assert isinstance(row, dict)
            for field, item in row.items():
                if isinstance(item, list):
                    assert all(isinstance(x, int | float) for x in item), (key, field)
                else:
                    assert isinstance(item, str | int | float), (key, field)
    assert "NaN" not in VECTORS.read_text() and "Infinity" not in VECTORS.read_text()


def test_sections_cover_the_protocol() -> None:
    assert DOC["protocol_version"] == codes.PROTOCOL_VERSION
    types = {v["type"] for v in DOC["frames"]}
    assert types == {int(t) for t in codes.MessageType}
    errors_seen = {v["error"] for v in DOC["invalid"]}
    assert errors_seen == {"CrcError", "MalformedFrame", "UnsupportedVersion", "UnknownMessageType",
                           "MalformedMessage"}
    seqs = {v["seq"] for v in DOC["frames"]}
    assert {0, 0xFFFF} <= seqs


def test_constants_match_the_python_modules() -> None:
    values = {c["name"]: c["value"] for c in DOC["constants"]}
    assert values["PROTOCOL_VERSION"] == codes.PROTOCOL_VERSION
    for m in codes.MessageType:
        assert values[f"MSG_{m.name}"] == m
    for r in codes.FaultReason:
        assert values[f"FAULT_{r.name}"] == r
    for f in (codes.StatusFlags.ESTOP, codes.StatusFlags.TERMINATED):
        assert values[f"FLAG_{f.name}"] == f
    assert values["MAX_ENCODED"] == framing.MAX_ENCODED == cobs.max_encoded_len(framing.MAX_PAYLOAD)
    assert values["MAX_OBS_DIM"] == messages.MAX_OBS_DIM
    assert values["CRC_CHECK"] == 0x29B1


@_params("crc")
def test_crc(vector: dict[str, Any]) -> None:
    assert crc16(bytes.fromhex(vector["data_hex"])) == vector["crc"]


@_params("cobs")
def test_cobs(vector: dict[str, Any]) -> None:
    decoded, encoded = bytes.fromhex(vector["decoded_hex"]), bytes.fromhex(vector["encoded_hex"])
    assert cobs.encode(decoded) == encoded
    assert cobs.decode(encoded) == decoded
    assert 0 not in encoded
    assert len(encoded) <= cobs.max_encoded_len(len(decoded))


@_params("cobs_invalid")
def test_cobs_invalid(vector: dict[str, Any]) -> None:
    with pytest.raises(getattr(errors, vector["error"])):
        cobs.decode(bytes.fromhex(vector["encoded_hex"]))


def _feed_whole_and_bytewise(wire: bytes) -> tuple[list, list]:
    whole = FrameDecoder().feed(wire)
    decoder = FrameDecoder()
    bytewise = [item for i in range(len(wire)) for item in decoder.feed(wire[i : i + 1])]
    return whole, bytewise


@_params("frames")
def test_frame(vector: dict[str, Any]) -> None:
    message = gen.message_of(vector)
    frame = Frame(vector["type"], vector["seq"], bytes.fromhex(vector["body_hex"]), vector["version"])
    assert vector["version"] == codes.PROTOCOL_VERSION
    assert encode_body(message) == frame.body
    assert encode_payload(frame).hex() == vector["payload_hex"]
    assert encode_message(message, vector["seq"]).hex() == vector["wire_hex"]
    assert decode_payload(bytes.fromhex(vector["payload_hex"])) == frame
    for results in _feed_whole_and_bytewise(bytes.fromhex(vector["wire_hex"])):
        assert results == [frame]
    decoded = decode_message(frame)
    assert decoded == message
    assert gen.message_fields(decoded) == {k: vector[k] for k in gen.message_fields(message)}
    # Floats survive bit for bit (== would not tell -0.0 from 0.0).
    for key in ("values", "action_low", "action_high"):
        if key in vector:
            packed = struct.pack(f"<{len(vector[key])}f", *vector[key])
            assert packed == struct.pack(f"<{len(vector[key])}f", *getattr(decoded, key))


@_params("framing")
def test_framing(vector: dict[str, Any]) -> None:
    frame = Frame(vector["type"], vector["seq"], bytes.fromhex(vector["body_hex"]), vector["version"])
    assert encode_payload(frame).hex() == vector["payload_hex"]
    assert encode_frame(frame).hex() == vector["wire_hex"]
    assert len(bytes.fromhex(vector["wire_hex"])) <= framing.MAX_ENCODED + 2
    for results in _feed_whole_and_bytewise(bytes.fromhex(vector["wire_hex"])):
        assert results == [frame]


@_params("invalid")
def test_invalid(vector: dict[str, Any]) -> None:
    expected = getattr(errors, vector["error"])
    wire = bytes.fromhex(vector["wire_hex"])
    for results in _feed_whole_and_bytewise(wire):
        assert len(results) == 1, results
        (result,) = results
        if isinstance(result, errors.FrameError):
            assert type(result) is expected
        else:
            assert issubclass(expected, errors.ProtocolError) and not issubclass(expected, errors.FrameError)
            with pytest.raises(expected):
                decode_message(result)


def test_invalid_vectors_do_not_cost_the_next_frame() -> None:
    """Every invalid chunk followed by a valid frame: the decoder resyncs and yields that frame."""
    good = encode_message(messages.HelloMsg(), 9)
    for vector in DOC["invalid"]:
        results = FrameDecoder().feed(bytes.fromhex(vector["wire_hex"]) + good)
        assert results[-1] == Frame(codes.MessageType.HELLO, 9), vector["name"]
