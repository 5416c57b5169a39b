/* plant_link.c - the plant over a serial line. See plant_link.h and docs/protocol.md section 12. */
#include "plant_link.h"

#include <string.h>

#include "fb_msg.h"

void plant_link_init(plant_link *p, const plant_io *io, uint16_t timeout_ms)
{
    memset(p, 0, sizeof *p);
    p->io = *io;
    p->timeout_ms = timeout_ms;
    fb_rx_init(&p->rx);
}

/* Send request `type` with body[0 .. length-1] and wait for its answer of type `answer` (same seq). On
 * success *out is the answer, its body valid until the next request. */
static int request(plant_link *p, uint8_t type, size_t length, uint8_t answer, fb_frame *out)
{
    uint16_t seq = p->seq;
    uint32_t start;
    size_t n = fb_frame_encode(FB_PROTOCOL_VERSION, type, seq, p->body, length, p->wire, sizeof p->wire);
    p->seq = (uint16_t)(seq + 1u);
    p->io.write(p->io.ctx, p->wire, n);
    start = p->io.millis(p->io.ctx);
    for (;;) {
        uint8_t buf[32];
        size_t i, got = p->io.read(p->io.ctx, buf, sizeof buf);
        for (i = 0; i < got; ++i) {
            fb_err err;
            if (fb_rx_push(&p->rx, buf[i], out, &err) == FB_RX_FRAME && out->seq == seq) {
                if (out->type == answer) {
                    return 0; /* bytes after it in buf belong to no request: there are none */
                }
                p->bad_answers++;
                return PLANT_ERR_ANSWER;
            }
        }
        if (p->io.millis(p->io.ctx) - start > p->timeout_ms) {
            p->timeouts++;
            return PLANT_ERR_TIMEOUT;
        }
        if (got == 0) {
            p->io.idle(p->io.ctx);
        }
    }
}

/* A PLANT_STATE answer into sensors[] and terminated. */
static int take_state(plant_link *p, const fb_frame *f)
{
    uint8_t i;
    if (f->length != 2u + 4u * p->obs_dim || f->body[1] != p->obs_dim) {
        p->bad_answers++;
        return PLANT_ERR_ANSWER;
    }
    p->terminated = f->body[0] != 0;
    for (i = 0; i < p->obs_dim; ++i) {
        p->sensors[i] = fb_get_f32(f->body + 2u + 4u * i);
    }
    return 0;
}

static int exchange(plant_link *p, uint8_t type, size_t length)
{
    fb_frame f;
    int code = request(p, type, length, PLANT_STATE, &f);
    return code != 0 ? code : take_state(p, &f);
}

int plant_link_hello(plant_link *p, fw_config *cfg)
{
    fb_frame f;
    uint8_t i, obs, act;
    int code = request(p, PLANT_HELLO, 0, PLANT_INFO, &f);
    if (code != 0) {
        return code;
    }
    obs = f.length >= 7u ? f.body[0] : 0u;
    act = f.length >= 7u ? f.body[1] : 0u;
    if (obs == 0 || obs > FW_MAX_OBS || act == 0 || act > FW_MAX_ACTION || f.length != 7u + 8u * act) {
        p->bad_answers++;
        return PLANT_ERR_ANSWER;
    }
    p->obs_dim = cfg->obs_dim = obs;
    p->action_dim = cfg->action_dim = act;
    p->lockstep = f.body[2] != 0;
    cfg->capabilities = (uint8_t)(FB_CAP_CAN_RESET | (p->lockstep ? FB_CAP_LOCKSTEP : 0u));
    cfg->control_period_us = fb_get_u32(f.body + 3);
    for (i = 0; i < act; ++i) {
        cfg->action_low[i] = fb_get_f32(f.body + 7u + 4u * i);
        cfg->action_high[i] = fb_get_f32(f.body + 7u + 4u * (act + i));
    }
    return 0;
}

/* PLANT_ACTUATE's body into body[]; its length. */
static size_t actuate_body(uint8_t *body, const float *values, uint8_t n, uint8_t safe)
{
    uint8_t i;
    body[0] = safe;
    body[1] = n;
    for (i = 0; i < n; ++i) {
        fb_put_f32(body + 2u + 4u * i, values[i]);
    }
    return 2u + 4u * n;
}

static int actuate(plant_link *p, const float *values, uint8_t n, uint8_t safe)
{
    return exchange(p, PLANT_ACTUATE, actuate_body(p->body, values, n, safe));
}

size_t plant_link_safe_frame(const plant_link *p, const float *safe, uint8_t *wire, size_t cap)
{
    uint8_t body[sizeof p->body];
    size_t length = actuate_body(body, safe, p->action_dim, 1);
    return fb_frame_encode(FB_PROTOCOL_VERSION, PLANT_ACTUATE, 0xFFFFu, body, length, wire, cap);
}

/* ----- the HAL (ctx: the plant_link) ---------------------------------------------------------------------- */

static int pl_read_sensors(void *ctx, float *obs, uint8_t obs_dim)
{
    plant_link *p = ctx;
    int code = p->fresh ? 0 : exchange(p, PLANT_SENSE, 0);
    if (code == 0) {
        memcpy(obs, p->sensors, sizeof(float) * (obs_dim < p->obs_dim ? obs_dim : p->obs_dim));
    }
    return code;
}

static int pl_write_actuators(void *ctx, const float *action, uint8_t action_dim)
{
    return actuate(ctx, action, action_dim, 0);
}

/* Must not fail: a plant that does not answer has been told, and the core goes on. */
static void pl_write_safe(void *ctx, const float *safe, uint8_t action_dim)
{
    (void)actuate(ctx, safe, action_dim, 1);
}

static int pl_reset(void *ctx)
{
    plant_link *p = ctx;
    int code = exchange(p, PLANT_RESET, 0);
    p->fresh = code == 0 && p->lockstep;
    return code;
}

static int pl_step(void *ctx)
{
    plant_link *p = ctx;
    int code = exchange(p, PLANT_STEP, 0);
    p->fresh = code == 0 && p->lockstep;
    return code;
}

static int pl_terminated(void *ctx)
{
    return ((plant_link *)ctx)->terminated;
}

static uint32_t pl_millis(void *ctx)
{
    plant_link *p = ctx;
    return p->board.millis(p->board.ctx);
}

static void pl_serial_write(void *ctx, const uint8_t *data, size_t len)
{
    plant_link *p = ctx;
    p->board.serial_write(p->board.ctx, data, len);
}

void plant_link_hal(plant_link *p, fw_hal *hal, const fw_hal *board)
{
    p->board = *board;
    hal->ctx = p;
    hal->millis = pl_millis;
    hal->read_sensors = pl_read_sensors;
    hal->write_actuators = pl_write_actuators;
    hal->write_safe = pl_write_safe;
    hal->plant_reset = pl_reset;
    hal->plant_step = p->lockstep ? pl_step : NULL;
    hal->terminated = pl_terminated;
    hal->serial_write = pl_serial_write;
}
