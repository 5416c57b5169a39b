/*
 * fb_msg.h - message bodies and their byte layouts (the C twin of firmware_bridge/messages.py).
 *
 * All fields are little-endian. Floats are IEEE-754 binary32: a value is copied with memcpy into a
 * uint32_t and written byte by byte, so the code assumes a target whose float is IEEE-754 binary32 with
 * the same byte order as its integers (every little-endian MCU and PC in practice; fb_msg.c checks the
 * size and mantissa width at compile time).
 *
 * Vectors travel as a u8 count followed by that many float32. Decoding checks that a body has exactly
 * the size its counts imply, so a truncated or padded body is never read as a shorter vector.
 */
#ifndef FB_MSG_H
#define FB_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "fb_frame.h"
#include "protocol.h"

/* Largest body of each message with counts at their maxima. */
#define FB_INFO_MAX_SIZE (FB_INFO_HEAD_SIZE + 8u * FB_MAX_ACTION_DIM + 1u + FB_MAX_FIRMWARE_ID) /* 172 */
#define FB_ACTION_MAX_SIZE (1u + 4u * FB_MAX_ACTION_DIM)                                       /* 65 */
#define FB_OBSERVATION_MAX_SIZE (FB_OBSERVATION_HEAD_SIZE + 4u * FB_MAX_OBS_DIM)               /* 137 */

typedef struct fb_info {
    uint16_t ack_seq;
    uint8_t obs_dim;
    uint8_t action_dim;
    uint8_t capabilities;
    uint32_t control_period_us;
    uint16_t watchdog_ms; /* 0: no watchdog */
    float action_low[FB_MAX_ACTION_DIM];
    float action_high[FB_MAX_ACTION_DIM];
    uint8_t id_len;
    char firmware_id[FB_MAX_FIRMWARE_ID + 1]; /* printable ASCII, NUL-terminated here (not on the wire) */
} fb_info;

typedef struct fb_action {
    uint8_t count;
    float values[FB_MAX_ACTION_DIM];
} fb_action;

typedef struct fb_observation {
    uint16_t ack_seq;
    uint32_t t_ms;
    uint16_t flags;
    uint8_t count;
    float values[FB_MAX_OBS_DIM];
} fb_observation;

typedef struct fb_status {
    uint16_t ack_seq;
    uint32_t t_ms;
    uint16_t flags;
} fb_status;

typedef struct fb_fault {
    uint8_t reason;
    uint8_t detail;
    uint16_t ref_seq;
    uint32_t t_ms;
    uint16_t flags;
} fb_fault;

/* Any message: HELLO, HEARTBEAT, ESTOP, CLEAR and RESET have no fields. */
typedef struct fb_msg {
    uint8_t type;
    union {
        fb_info info;
        fb_action action;
        fb_observation observation;
        fb_status status;
        fb_fault fault;
    } u;
} fb_msg;

/* 1 if type is a defined message type, 0 otherwise. */
int fb_msg_type_known(uint8_t type);
/* 1 if type is sent by the host (HELLO, ACTION, HEARTBEAT, ESTOP, CLEAR, RESET). */
int fb_msg_host_to_firmware(uint8_t type);

/* ----- encoding: each returns the body length, or -1 (counts above the maxima, id not printable ASCII,
 *       cap too small). ---------------------------------------------------------------------------------- */

int fb_encode_info(const fb_info *m, uint8_t *body, size_t cap);
int fb_encode_action(const fb_action *m, uint8_t *body, size_t cap);
int fb_encode_observation(const fb_observation *m, uint8_t *body, size_t cap);
int fb_encode_status(const fb_status *m, uint8_t *body, size_t cap);
int fb_encode_fault(const fb_fault *m, uint8_t *body, size_t cap);
/* Any message by m->type (0 for the empty bodies; -1 for an unknown type). */
int fb_encode_body(const fb_msg *m, uint8_t *body, size_t cap);

/* ----- decoding: FB_OK or FB_ERR_BODY --------------------------------------------------------------------- */

fb_err fb_decode_info(const uint8_t *body, size_t n, fb_info *out);
fb_err fb_decode_action(const uint8_t *body, size_t n, fb_action *out);
fb_err fb_decode_observation(const uint8_t *body, size_t n, fb_observation *out);
fb_err fb_decode_status(const uint8_t *body, size_t n, fb_status *out);
fb_err fb_decode_fault(const uint8_t *body, size_t n, fb_fault *out);

/* The message in a frame, checked in the order of messages.decode_message: FB_ERR_VERSION for another
 * protocol version, FB_ERR_TYPE for an undefined type code, FB_ERR_BODY for a body that does not fit. */
fb_err fb_decode_message(const fb_frame *frame, fb_msg *out);

/* ----- little-endian helpers ------------------------------------------------------------------------------ */

void fb_put_u16(uint8_t *p, uint16_t v);
void fb_put_u32(uint8_t *p, uint32_t v);
void fb_put_f32(uint8_t *p, float v);
uint16_t fb_get_u16(const uint8_t *p);
uint32_t fb_get_u32(const uint8_t *p);
float fb_get_f32(const uint8_t *p);
uint32_t fb_f32_bits(float v);
/* 1 unless v is NaN or an infinity (tested on the bits, immune to fast-math flags). */
int fb_f32_finite(float v);

#endif /* FB_MSG_H */
