/*
 * fb_frame.h - COBS, CRC-16/CCITT-FALSE, frame encoding and a streaming frame receiver.
 *
 * The C twin of firmware_bridge/cobs.py and firmware_bridge/framing.py; both reproduce
 * firmware_bridge/vectors/protocol_vectors.json. No dynamic allocation: every buffer is the caller's
 * or lives in a fixed-size struct the caller owns.
 */
#ifndef FB_FRAME_H
#define FB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* Why a frame or message was rejected; the names follow firmware_bridge/errors.py. */
typedef enum fb_err {
    FB_OK = 0,
    FB_ERR_CRC = 1,             /* CrcError: the CRC does not match (line noise) */
    FB_ERR_MALFORMED_FRAME = 2, /* MalformedFrame: invalid COBS, bad size, length field disagrees */
    FB_ERR_VERSION = 3,         /* UnsupportedVersion: a CRC-valid frame of another protocol version */
    FB_ERR_TYPE = 4,            /* UnknownMessageType: undefined type code */
    FB_ERR_BODY = 5,            /* MalformedMessage: the body does not fit the type's layout */
    FB_ERR_ARG = 6              /* the caller's fault: buffer too small, value out of range */
} fb_err;

/* Name of an error as in firmware_bridge/errors.py ("CrcError", ...); "ok" for FB_OK. */
const char *fb_err_name(fb_err err);

/* ----- CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor ----------------- */

#define FB_CRC_INIT 0xFFFFu

uint16_t fb_crc16_update(uint16_t crc, const uint8_t *data, size_t n);
uint16_t fb_crc16(const uint8_t *data, size_t n);

/* ----- COBS ---------------------------------------------------------------------------------------- */

/* Encode n bytes into dst (at most FB_COBS_MAX_ENCODED(n) bytes, never a 0x00).
 * Returns the encoded length, or 0 if cap is too small (a valid encoding is never empty). */
size_t fb_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

/* Decode n bytes into dst; dst may equal src (in-place decoding: the output never overtakes the input).
 * FB_ERR_MALFORMED_FRAME for a zero byte, a block past the end or an output larger than cap. */
fb_err fb_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_len);

/* ----- frames --------------------------------------------------------------------------------------- */

/* A decoded frame. body points into the buffer it was decoded from (valid until that buffer changes). */
typedef struct fb_frame {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint8_t length;
    const uint8_t *body;
} fb_frame;

/* The wire bytes 00 cobs(version type seq length body crc) 00 of one frame, written into wire.
 * Returns the wire length, or 0 if length > FB_MAX_BODY or cap is too small
 * (FB_COBS_MAX_ENCODED(FB_HEADER_SIZE + length + FB_CRC_SIZE) + 2 always suffices). */
size_t fb_frame_encode(uint8_t version, uint8_t type, uint16_t seq, const uint8_t *body, size_t length,
                       uint8_t *wire, size_t cap);

/* Header, body and CRC (the bytes COBS wraps) of one frame. Returns its length or 0 (as above). */
size_t fb_payload_encode(uint8_t version, uint8_t type, uint16_t seq, const uint8_t *body, size_t length,
                         uint8_t *payload, size_t cap);

/* Check size, CRC (first) and length field of a payload: FB_OK, FB_ERR_CRC or FB_ERR_MALFORMED_FRAME. */
fb_err fb_payload_decode(const uint8_t *payload, size_t n, fb_frame *out);

/* COBS-decode buf in place (n bytes between delimiters) and check it as a payload. */
fb_err fb_frame_decode_in_place(uint8_t *buf, size_t n, fb_frame *out);

/* ----- streaming receiver ----------------------------------------------------------------------------- */

/* Resynchronizes at every 0x00. A chunk longer than FB_MAX_ENCODED is dropped as one
 * FB_ERR_MALFORMED_FRAME without being buffered, so noise cannot overflow anything. */
typedef struct fb_rx {
    uint8_t buf[FB_MAX_ENCODED];
    uint16_t len;
    uint8_t overflow; /* dropping bytes until the next delimiter */
} fb_rx;

typedef enum fb_rx_result {
    FB_RX_NONE = 0,  /* nothing complete yet */
    FB_RX_FRAME = 1, /* *frame holds a frame that passed framing checks (body valid until the next push) */
    FB_RX_ERROR = 2  /* *err holds why a chunk was rejected (FB_ERR_CRC or FB_ERR_MALFORMED_FRAME) */
} fb_rx_result;

void fb_rx_init(fb_rx *rx);
fb_rx_result fb_rx_push(fb_rx *rx, uint8_t byte, fb_frame *frame, fb_err *err);

#endif /* FB_FRAME_H */
