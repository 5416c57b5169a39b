/*
 * fuzz_firmware.c - libFuzzer harness for the frame decoder and the firmware's message dispatch.
 *
 * An input's first byte says what the rest is: even, the bytes on the wire as they are; odd, frames as
 * records (body length, version, type, seq low, seq high, body) that the harness encodes with their COBS
 * and CRC, so that mutations reach the messages instead of dying at the CRC check. The wire bytes go
 * through the public entry points only:
 *   1. fb_rx_push and fb_decode_message, byte by byte: every message that decodes must encode back to the
 *      same body (fb_encode_body), byte for byte;
 *   2. fw_core_feed and fw_core_poll of two cores (a lockstep robot with two actions, a real-time one with
 *      one), on a clock that starts just before the 32-bit wrap and advances 7 ms per delimiter, so the
 *      watchdog and the streaming schedule run too. Every actuator command must be finite and within the
 *      limits, and every byte a core writes must decode as a valid message.
 * A broken rule aborts; AddressSanitizer and UBSan catch the rest. Seeds: tools/make_fuzz_corpus.py writes
 * the protocol vectors' frames and sessions made of them, in both forms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fw_core.h"

#define FAIL(...) (fprintf(stderr, "fuzz_firmware: " __VA_ARGS__), fputc('\n', stderr), abort())
#define MS_PER_FRAME 7u
#define DELIMITER 0x00u /* ends and starts every frame on the wire */

typedef struct plant {
    const fw_config *cfg;
    float obs[FB_MAX_OBS_DIM];
    fb_rx out; /* decodes what the core writes */
} plant;

static uint32_t clock_ms;

static uint32_t p_millis(void *ctx) { (void)ctx; return clock_ms; }

static int p_read(void *ctx, float *obs, uint8_t n)
{
    memcpy(obs, ((plant *)ctx)->obs, n * sizeof(float));
    return 0;
}

static void check_action(const plant *p, const float *a, uint8_t n)
{
    if (n != p->cfg->action_dim) FAIL("actuator write of %u values, robot has %u", n, p->cfg->action_dim);
    for (uint8_t i = 0; i < n; i++)
        if (!fb_f32_finite(a[i]) || a[i] < p->cfg->action_low[i] || a[i] > p->cfg->action_high[i])
            FAIL("actuator %u commanded %g outside [%g, %g]", i, (double)a[i], (double)p->cfg->action_low[i],
                 (double)p->cfg->action_high[i]);
}

static int p_write(void *ctx, const float *a, uint8_t n)
{
    plant *p = ctx;
    check_action(p, a, n);
    p->obs[0] += a[0];
    return 0;
}

static void p_safe(void *ctx, const float *a, uint8_t n) { check_action(ctx, a, n); }
static int p_reset(void *ctx) { ((plant *)ctx)->obs[0] = 0.0f; return 0; }
static int p_step(void *ctx) { (void)ctx; return 0; }
static int p_terminated(void *ctx) { return ((plant *)ctx)->obs[0] > 100.0f; }

/* Every frame the firmware sends must pass the framing checks and decode as a firmware-to-host message. */
static void p_serial(void *ctx, const uint8_t *data, size_t n)
{
    plant *p = ctx;
    for (size_t i = 0; i < n; i++) {
        fb_frame frame;
        fb_err err;
        fb_msg msg;
        fb_rx_result r = fb_rx_push(&p->out, data[i], &frame, &err);
        if (r == FB_RX_ERROR) FAIL("the firmware sent a frame that fails with %s", fb_err_name(err));
        if (r == FB_RX_FRAME) {
            err = fb_decode_message(&frame, &msg);
            if (err != FB_OK || fb_msg_host_to_firmware(msg.type))
                FAIL("the firmware sent message type %u that decodes with %s", frame.type, fb_err_name(err));
        }
    }
}

/* 1. The decoder alone: what decodes re-encodes to the same body. */
static void decode_all(const uint8_t *data, size_t size)
{
    static fb_rx rx;
    fb_rx_init(&rx);
    for (size_t i = 0; i < size; i++) {
        fb_frame frame;
        fb_err err;
        fb_msg msg;
        uint8_t body[FB_MAX_BODY];
        if (fb_rx_push(&rx, data[i], &frame, &err) != FB_RX_FRAME || fb_decode_message(&frame, &msg) != FB_OK)
            continue;
        int n = fb_encode_body(&msg, body, sizeof body);
        if (n != frame.length || memcmp(body, frame.body, frame.length) != 0)
            FAIL("message type %u of %u bytes re-encodes to %d different bytes", frame.type, frame.length, n);
    }
}

/* 2. A firmware core fed the stream, polled at every delimiter. */
static void dispatch_all(const fw_config *cfg, const uint8_t *data, size_t size)
{
    static plant p;
    static fw_core core;
    fw_hal hal = {.ctx = &p, .millis = p_millis, .read_sensors = p_read, .write_actuators = p_write,
                  .write_safe = p_safe, .plant_reset = p_reset,
                  .plant_step = (cfg->capabilities & FB_CAP_LOCKSTEP) ? p_step : NULL,
                  .terminated = p_terminated, .serial_write = p_serial};
    memset(&p, 0, sizeof p);
    p.cfg = cfg;
    fb_rx_init(&p.out);
    clock_ms = 0xFFFFFF00u; /* the 32-bit millisecond clock wraps within the first 256 ms */
    if (fw_core_init(&core, cfg, &hal, clock_ms) != FW_INIT_OK) FAIL("fw_core_init refused the harness config");
    size_t start = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] != DELIMITER && i + 1 < size) continue;
        fw_core_feed(&core, data + start, i + 1 - start, clock_ms);
        clock_ms += MS_PER_FRAME;
        fw_core_poll(&core, clock_ms);
        start = i + 1;
    }
    if (core.stats.tx_errors != 0) FAIL("%u frames could not be encoded", (unsigned)core.stats.tx_errors);
}

static fw_config lockstep_robot(void)
{
    fw_config c;
    memset(&c, 0, sizeof c);
    c.obs_dim = 2;
    c.action_dim = 2;
    c.capabilities = FB_CAP_CAN_RESET | FB_CAP_LOCKSTEP;
    c.control_period_us = 20000;
    c.watchdog_ms = 200;
    c.action_low[0] = -1.0f;
    c.action_high[0] = 1.0f;
    c.action_low[1] = 0.5f; /* zero is outside: the safe action is clipped into the limits */
    c.action_high[1] = 2.0f;
    c.firmware_id = "fuzz lockstep";
    return c;
}

static fw_config realtime_robot(void)
{
    fw_config c;
    memset(&c, 0, sizeof c);
    c.obs_dim = 3;
    c.action_dim = 1;
    c.capabilities = 0;
    c.control_period_us = 10000;
    c.watchdog_ms = 30;
    c.action_low[0] = -0.25f;
    c.action_high[0] = 0.75f;
    c.has_safe_action = 1;
    c.safe_action[0] = 0.5f;
    c.firmware_id = "fuzz realtime";
    return c;
}

/* The wire bytes of records (n, version, type, seq low, seq high, n body bytes) into wire, which holds
 * 2 * size + 16 bytes (a record of m >= 5 bytes takes at most m + 7 on the wire); returns the length. */
static size_t wire_from_records(const uint8_t *data, size_t size, uint8_t *wire)
{
    size_t at = 0, out = 0;
    while (at + 5 <= size) {
        size_t n = data[at];
        if (at + 5 + n > size) n = size - at - 5; /* the last record's body is cut short */
        out += fb_frame_encode(data[at + 1], data[at + 2], (uint16_t)(data[at + 3] | data[at + 4] << 8),
                               data + at + 5, n, wire + out, 2 * size + 16 - out);
        at += 5 + n;
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fw_config lockstep, realtime;
    static int ready;
    if (!ready) {
        lockstep = lockstep_robot();
        realtime = realtime_robot();
        ready = 1;
    }
    if (size == 0) return 0;
    uint8_t *wire = NULL;
    const uint8_t *stream = data + 1;
    size_t length = size - 1;
    if (data[0] & 1) {
        wire = malloc(2 * size + 16);
        if (wire == NULL) FAIL("out of memory");
        length = wire_from_records(data + 1, size - 1, wire);
        stream = wire;
    }
    decode_all(stream, length);
    dispatch_all(&lockstep, stream, length);
    dispatch_all(&realtime, stream, length);
    free(wire);
    return 0;
}
