/*
 * test_core.c - the firmware core's rules (docs/protocol.md section 5) with a fake HAL and a fake clock.
 *
 * Every test builds a core over a fake plant, feeds it wire frames at chosen times, and decodes what it
 * wrote to the serial port. Nothing sleeps: time is an argument.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fw_core.h"
#include "check.h"

int check_failures = 0;
int check_count = 0;

/* ----- fake HAL ----------------------------------------------------------------------------------------- */

#define OUT_CAP 65536
#define MAX_RX 256

typedef struct fake {
    uint32_t now;
    float obs[FB_MAX_OBS_DIM];
    int sensor_error, actuator_error, step_error, reset_error, terminated;
    float actuators[FB_MAX_ACTION_DIM];
    int actuator_writes, safe_writes, steps, resets, sensor_reads;
    uint8_t out[OUT_CAP];
    size_t out_len;
} fake;

static uint32_t f_millis(void *ctx) { return ((fake *)ctx)->now; }

static int f_read(void *ctx, float *obs, uint8_t n)
{
    fake *f = ctx;
    f->sensor_reads++;
    if (f->sensor_error) return f->sensor_error;
    memcpy(obs, f->obs, n * sizeof(float));
    return 0;
}

static int f_write(void *ctx, const float *a, uint8_t n)
{
    fake *f = ctx;
    if (f->actuator_error) return f->actuator_error;
    memcpy(f->actuators, a, n * sizeof(float));
    f->actuator_writes++;
    return 0;
}

static void f_safe(void *ctx, const float *a, uint8_t n)
{
    fake *f = ctx;
    memcpy(f->actuators, a, n * sizeof(float));
    f->safe_writes++;
}

static int f_reset(void *ctx)
{
    fake *f = ctx;
    if (f->reset_error) return f->reset_error;
    f->resets++;
    f->obs[0] = 0.0f;
    return 0;
}

static int f_step(void *ctx)
{
    fake *f = ctx;
    if (f->step_error) return f->step_error;
    f->steps++;
    f->obs[0] += f->actuators[0]; /* a trivially predictable plant */
    return 0;
}

static int f_terminated(void *ctx) { return ((fake *)ctx)->terminated; }

static void f_serial(void *ctx, const uint8_t *d, size_t n)
{
    fake *f = ctx;
    if (f->out_len + n > OUT_CAP) {
        fprintf(stderr, "fake serial buffer full\n");
        exit(2);
    }
    memcpy(f->out + f->out_len, d, n);
    f->out_len += n;
}

/* One test fixture: the fake, its HAL, a config and the core. */
typedef struct rig {
    fake f;
    fw_hal hal;
    fw_config cfg;
    fw_core core;
    uint16_t host_seq;
} rig;

/* A lockstep robot with 2 observations, 2 actions limited to [-1, 1] and [0, 2], watchdog 200 ms. */
static void rig_config(rig *r)
{
    memset(r, 0, sizeof *r);
    r->hal.ctx = &r->f;
    r->hal.millis = f_millis;
    r->hal.read_sensors = f_read;
    r->hal.write_actuators = f_write;
    r->hal.write_safe = f_safe;
    r->hal.plant_reset = f_reset;
    r->hal.plant_step = f_step;
    r->hal.terminated = f_terminated;
    r->hal.serial_write = f_serial;
    r->cfg.obs_dim = 2;
    r->cfg.action_dim = 2;
    r->cfg.capabilities = FB_CAP_CAN_RESET | FB_CAP_LOCKSTEP;
    r->cfg.control_period_us = 20000;
    r->cfg.watchdog_ms = 200;
    r->cfg.action_low[0] = -1.0f;
    r->cfg.action_high[0] = 1.0f;
    r->cfg.action_low[1] = 0.0f;
    r->cfg.action_high[1] = 2.0f;
    r->cfg.firmware_id = "fake-robot";
    r->f.now = 1000;
}

static void rig_start(rig *r)
{
    fw_init_result res = fw_core_init(&r->core, &r->cfg, &r->hal, r->f.now);
    CHECK_EQ_U(res, FW_INIT_OK);
    r->f.out_len = 0;
}

static void rig_init(rig *r)
{
    rig_config(r);
    rig_start(r);
}

/* Frames the core wrote since the last call. */
typedef struct rx_frames {
    int n;
    uint16_t seq[MAX_RX];
    fb_msg msg[MAX_RX];
} rx_frames;

static void take(rig *r, rx_frames *out)
{
    fb_rx rx;
    size_t i;
    fb_rx_init(&rx);
    out->n = 0;
    for (i = 0; i < r->f.out_len; ++i) {
        fb_frame f;
        fb_err e;
        fb_rx_result res = fb_rx_push(&rx, r->f.out[i], &f, &e);
        CHECK(res != FB_RX_ERROR);
        if (res == FB_RX_FRAME && out->n < MAX_RX) {
            CHECK(fb_decode_message(&f, &out->msg[out->n]) == FB_OK);
            out->seq[out->n++] = f.seq;
        }
    }
    r->f.out_len = 0;
}

/* Send a raw frame at the fake's current time. */
static void send_raw(rig *r, uint8_t version, uint8_t type, uint16_t seq, const uint8_t *body, size_t len)
{
    uint8_t wire[FB_MAX_WIRE];
    size_t n = fb_frame_encode(version, type, seq, body, len, wire, sizeof wire);
    CHECK(n > 0);
    fw_core_feed(&r->core, wire, n, r->f.now);
}

static uint16_t send_msg(rig *r, uint8_t type, const uint8_t *body, size_t len)
{
    uint16_t seq = r->host_seq++;
    send_raw(r, FB_PROTOCOL_VERSION, type, seq, body, len);
    return seq;
}

static uint16_t send_empty(rig *r, uint8_t type)
{
    return send_msg(r, type, NULL, 0);
}

static uint16_t send_action(rig *r, const float *values, uint8_t count)
{
    fb_action a;
    uint8_t body[FB_ACTION_MAX_SIZE];
    int len;
    a.count = count;
    memcpy(a.values, values, count * sizeof(float));
    len = fb_encode_action(&a, body, sizeof body);
    CHECK(len > 0);
    return send_msg(r, FB_MSG_ACTION, body, (size_t)len);
}

static uint16_t act2(rig *r, float a0, float a1)
{
    float v[2];
    v[0] = a0;
    v[1] = a1;
    return send_action(r, v, 2);
}

/* Exactly one frame of type `type` came out; returns it. */
static const fb_msg *one(rig *r, rx_frames *got, uint8_t type)
{
    take(r, got);
    CHECK_MSG(got->n == 1, "expected one frame, got %d", got->n);
    if (got->n < 1) {
        static fb_msg none;
        memset(&none, 0, sizeof none);
        return &none;
    }
    CHECK_MSG(got->msg[0].type == type, "expected type %u, got %u", type, got->msg[0].type);
    return &got->msg[0];
}

/* Send ACTION (a0, a1) to a lockstep core; returns the OBSERVATION that answers it. */
static const fb_msg *step2(rig *r, rx_frames *got, float a0, float a1)
{
    act2(r, a0, a1);
    return one(r, got, FB_MSG_OBSERVATION);
}

static void expect_fault(rig *r, uint8_t reason, uint8_t detail, uint16_t ref_seq)
{
    rx_frames got;
    const fb_msg *m = one(r, &got, FB_MSG_FAULT);
    CHECK_MSG(m->u.fault.reason == reason, "reason %u, expected %u", m->u.fault.reason, reason);
    CHECK_MSG(m->u.fault.detail == detail, "detail %u, expected %u", m->u.fault.detail, detail);
    CHECK_MSG(m->u.fault.ref_seq == ref_seq, "ref_seq %u, expected %u", m->u.fault.ref_seq, ref_seq);
    CHECK(m->u.fault.flags == fw_core_flags(&r->core));
    CHECK(m->u.fault.t_ms == r->f.now);
}

static void expect_silence(rig *r)
{
    rx_frames got;
    take(r, &got);
    CHECK_MSG(got.n == 0, "expected no frame, got %d", got.n);
}

/* ----- tests ------------------------------------------------------------------------------------------- */

static void test_hello(void)
{
    rig r;
    rx_frames got;
    const fb_msg *m;
    rig_init(&r);
    send_empty(&r, FB_MSG_HEARTBEAT);
    take(&r, &got);
    send_empty(&r, FB_MSG_HELLO);
    m = one(&r, &got, FB_MSG_INFO);
    CHECK_EQ_U(m->u.info.ack_seq, 1);
    CHECK_EQ_U(m->u.info.obs_dim, 2);
    CHECK_EQ_U(m->u.info.action_dim, 2);
    CHECK_EQ_U(m->u.info.capabilities, FB_CAP_CAN_RESET | FB_CAP_LOCKSTEP);
    CHECK_EQ_U(m->u.info.control_period_us, 20000);
    CHECK_EQ_U(m->u.info.watchdog_ms, 200);
    CHECK(m->u.info.action_low[0] == -1.0f && m->u.info.action_high[0] == 1.0f);
    CHECK(m->u.info.action_low[1] == 0.0f && m->u.info.action_high[1] == 2.0f);
    CHECK(strcmp(m->u.info.firmware_id, "fake-robot") == 0);
    CHECK_EQ_U(got.seq[0], 1); /* the STATUS before was frame 0 */
    CHECK_EQ_U(fw_core_flags(&r.core), 0);
    CHECK_EQ_U(r.f.safe_writes, 1); /* init only: HELLO changes nothing */
}

static void test_init_writes_safe_state_and_checks_config(void)
{
    rig r;
    rig_config(&r);
    r.cfg.has_safe_action = 1;
    r.cfg.safe_action[0] = 5.0f;  /* clipped to 1 */
    r.cfg.safe_action[1] = -3.0f; /* clipped to 0 */
    r.f.actuators[0] = 9.0f;
    rig_start(&r);
    CHECK_EQ_U(r.f.safe_writes, 1);
    CHECK(r.f.actuators[0] == 1.0f && r.f.actuators[1] == 0.0f);

    rig_config(&r);
    r.cfg.obs_dim = 0;
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_SIZES);
    rig_config(&r);
    r.cfg.action_dim = FW_MAX_ACTION + 1;
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_SIZES);
    rig_config(&r);
    r.cfg.action_low[1] = 3.0f;
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_LIMITS);
    rig_config(&r);
    r.cfg.action_high[0] = (float)HUGE_VAL;
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_LIMITS);
    rig_config(&r);
    r.cfg.control_period_us = 0;
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_TIMING);
    rig_config(&r);
    r.cfg.firmware_id = "0123456789abcdef0123456789abcdefX"; /* 33 characters */
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_ID);
    rig_config(&r);
    r.cfg.firmware_id = "tab\there";
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_ID);
    rig_config(&r);
    r.hal.plant_step = NULL;
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_BAD_HAL);
    r.cfg.capabilities = FB_CAP_CAN_RESET;
    CHECK(fw_core_init(&r.core, &r.cfg, &r.hal, 0) == FW_INIT_OK);
}

static void test_action_lockstep(void)
{
    rig r;
    rx_frames got;
    const fb_msg *m;
    uint16_t seq;
    rig_init(&r);
    r.f.obs[1] = 7.5f;
    seq = act2(&r, 0.25f, 1.5f);
    m = one(&r, &got, FB_MSG_OBSERVATION);
    CHECK_EQ_U(m->u.observation.ack_seq, seq);
    CHECK_EQ_U(m->u.observation.flags, FB_FLAG_WATCHDOG_ARMED);
    CHECK_EQ_U(m->u.observation.count, 2);
    CHECK(m->u.observation.values[0] == 0.25f && m->u.observation.values[1] == 7.5f);
    CHECK_EQ_U(m->u.observation.t_ms, 1000);
    CHECK(r.f.actuators[0] == 0.25f && r.f.actuators[1] == 1.5f);
    CHECK_EQ_U(r.f.steps, 1);
    CHECK_EQ_U(r.core.wd_deadline_ms, 1200);
}

static void test_clip(void)
{
    rig r;
    rx_frames got;
    const fb_msg *m;
    rig_init(&r);
    m = step2(&r, &got, 3.0f, -0.5f);
    CHECK_EQ_U(m->u.observation.flags, FB_FLAG_CLIPPED | FB_FLAG_WATCHDOG_ARMED);
    CHECK(r.f.actuators[0] == 1.0f && r.f.actuators[1] == 0.0f);
    CHECK(m->u.observation.values[0] == 1.0f); /* the plant moved by the applied value, not the request */
    m = step2(&r, &got, -1e30f, 2.5f);
    CHECK(m->u.observation.flags & FB_FLAG_CLIPPED);
    CHECK(r.f.actuators[0] == -1.0f && r.f.actuators[1] == 2.0f);
    m = step2(&r, &got, 1.0f, 0.0f); /* exactly at the limits: not clipped */
    CHECK_EQ_U(m->u.observation.flags, FB_FLAG_WATCHDOG_ARMED);
    m = step2(&r, &got, -0.0f, 0.5f);
    CHECK_EQ_U(m->u.observation.flags, FB_FLAG_WATCHDOG_ARMED);
}

static void test_estop_latch(void)
{
    rig r;
    rx_frames got;
    const fb_msg *m;
    uint16_t seq;
    int writes;
    rig_init(&r);
    act2(&r, 0.5f, 1.0f);
    take(&r, &got);
    seq = send_empty(&r, FB_MSG_ESTOP);
    m = one(&r, &got, FB_MSG_STATUS);
    CHECK_EQ_U(m->u.status.ack_seq, seq);
    CHECK_EQ_U(m->u.status.flags, FB_FLAG_ESTOP); /* watchdog disarmed */
    CHECK(r.f.actuators[0] == 0.0f && r.f.actuators[1] == 0.0f);
    CHECK_EQ_U(r.f.safe_writes, 2); /* init and estop */
    writes = r.f.actuator_writes;
    seq = act2(&r, 0.5f, 1.0f);
    expect_fault(&r, FB_FAULT_LATCHED, 0, seq);
    CHECK_EQ_U(r.f.actuator_writes, writes);
    CHECK_EQ_U(r.f.steps, 1);
    seq = send_empty(&r, FB_MSG_RESET);
    expect_fault(&r, FB_FAULT_LATCHED, 0, seq);
    CHECK_EQ_U(r.f.resets, 0);
    /* Latched and a malformed ACTION: the layout is checked first. */
    seq = send_msg(&r, FB_MSG_ACTION, (const uint8_t *)"\x02\x00\x00", 3);
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 2, seq);
    send_empty(&r, FB_MSG_HEARTBEAT);
    m = one(&r, &got, FB_MSG_STATUS);
    CHECK_EQ_U(m->u.status.flags, FB_FLAG_ESTOP);
    r.f.now += 10000; /* no watchdog while latched */
    fw_core_poll(&r.core, r.f.now);
    expect_silence(&r);
    seq = send_empty(&r, FB_MSG_CLEAR);
    m = one(&r, &got, FB_MSG_STATUS);
    CHECK_EQ_U(m->u.status.ack_seq, seq);
    CHECK_EQ_U(m->u.status.flags, 0);
    CHECK(r.f.actuators[0] == 0.0f); /* still safe until the next ACTION */
    seq = act2(&r, 0.5f, 1.0f);
    m = one(&r, &got, FB_MSG_OBSERVATION);
    CHECK_EQ_U(m->u.observation.ack_seq, seq);
    CHECK(r.f.actuators[0] == 0.5f);
}

static void test_watchdog(void)
{
    rig r;
    rx_frames got;
    const fb_msg *m;
    uint16_t seq;
    rig_init(&r);
    fw_core_poll(&r.core, r.f.now + 100000); /* not armed before the first ACTION */
    expect_silence(&r);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, r.f.now), UINT32_MAX);
    seq = act2(&r, 0.5f, 1.0f);
    take(&r, &got);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, r.f.now), 201);
    r.f.now += 100;
    send_empty(&r, FB_MSG_HEARTBEAT); /* does not feed the watchdog */
    take(&r, &got);
    r.f.now = 1200;
    fw_core_poll(&r.core, r.f.now); /* "more than watchdog_ms": not yet at exactly 200 ms */
    expect_silence(&r);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, r.f.now), 1);
    r.f.now = 1201;
    fw_core_poll(&r.core, r.f.now);
    expect_fault(&r, FB_FAULT_WATCHDOG, 0, seq);
    CHECK_EQ_U(fw_core_flags(&r.core), FB_FLAG_FAULT);
    CHECK(r.f.actuators[0] == 0.0f && r.f.actuators[1] == 0.0f);
    CHECK_EQ_U(r.core.stats.watchdog_trips, 1);
    r.f.now += 1000;
    fw_core_poll(&r.core, r.f.now); /* one FAULT only */
    expect_silence(&r);
    seq = act2(&r, 0.5f, 1.0f);
    expect_fault(&r, FB_FAULT_LATCHED, 0, seq);
    send_empty(&r, FB_MSG_CLEAR);
    m = one(&r, &got, FB_MSG_STATUS);
    CHECK_EQ_U(m->u.status.flags, 0);
    seq = act2(&r, 0.5f, 1.0f);
    m = one(&r, &got, FB_MSG_OBSERVATION);
    CHECK_EQ_U(m->u.observation.flags, FB_FLAG_WATCHDOG_ARMED);

    /* Fed by every ACTION. */
    r.f.now += 150;
    seq = act2(&r, 0.5f, 1.0f);
    take(&r, &got);
    r.f.now += 150;
    fw_core_poll(&r.core, r.f.now);
    expect_silence(&r);

    /* An ACTION arriving after the deadline, with no poll in between: the watchdog trips first. */
    r.f.now += 300;
    act2(&r, 0.5f, 1.0f);
    take(&r, &got);
    CHECK_EQ_U(got.n, 2);
    CHECK(got.msg[0].type == FB_MSG_FAULT && got.msg[0].u.fault.reason == FB_FAULT_WATCHDOG &&
          got.msg[0].u.fault.ref_seq == seq);
    CHECK(got.msg[1].type == FB_MSG_FAULT && got.msg[1].u.fault.reason == FB_FAULT_LATCHED);
}

/* A resent ACTION (its answer was lost) is answered again but does not feed the watchdog: a command holds for at
 * most watchdog_ms from its application, however often it is resent. */
static void test_resend_does_not_feed_the_watchdog(void)
{
    rig r;
    rx_frames got;
    fb_action a;
    uint8_t body[FB_ACTION_MAX_SIZE];
    int len;
    uint16_t seq;
    rig_init(&r);
    a.count = 2;
    a.values[0] = 0.5f;
    a.values[1] = 1.0f;
    len = fb_encode_action(&a, body, sizeof body);
    CHECK(len > 0);
    seq = send_msg(&r, FB_MSG_ACTION, body, (size_t)len);
    one(&r, &got, FB_MSG_OBSERVATION);
    r.f.now += 150;
    send_raw(&r, FB_PROTOCOL_VERSION, FB_MSG_ACTION, seq, body, (size_t)len);
    CHECK_EQ_U(one(&r, &got, FB_MSG_OBSERVATION)->u.observation.ack_seq, seq);
    CHECK_EQ_U(r.core.stats.resends, 1);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, r.f.now), 51);
    r.f.now += 51;
    fw_core_poll(&r.core, r.f.now);
    expect_fault(&r, FB_FAULT_WATCHDOG, 0, seq);
}

static void test_watchdog_clock_wrap(void)
{
    rig r;
    rx_frames got;
    uint16_t seq;
    rig_config(&r);
    r.f.now = 0xFFFFFFA0u; /* 96 ms before the clock wraps */
    rig_start(&r);
    seq = act2(&r, 0.5f, 1.0f);
    take(&r, &got);
    CHECK_EQ_U(r.core.wd_deadline_ms, 104); /* wrapped */
    fw_core_poll(&r.core, 0xFFFFFFFFu);
    fw_core_poll(&r.core, 0);
    fw_core_poll(&r.core, 104);
    expect_silence(&r);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, 0xFFFFFFF0u), 121);
    r.f.now = 105;
    fw_core_poll(&r.core, r.f.now);
    expect_fault(&r, FB_FAULT_WATCHDOG, 0, seq);
}

static void test_no_watchdog(void)
{
    rig r;
    rx_frames got;
    const fb_msg *m;
    rig_config(&r);
    r.cfg.watchdog_ms = 0;
    rig_start(&r);
    m = step2(&r, &got, 0.5f, 1.0f);
    CHECK_EQ_U(m->u.observation.flags, 0);
    fw_core_poll(&r.core, r.f.now + 1000000);
    expect_silence(&r);
}

static void test_bad_frames(void)
{
    rig r;
    uint8_t wire[FB_MAX_WIRE];
    size_t n;
    uint16_t seq;
    uint8_t body[8] = {1, 2, 3};
    float nan_action[2], v[3] = {0.1f, 0.2f, 0.3f};
    rig_init(&r);

    send_raw(&r, 2, FB_MSG_HELLO, 77, NULL, 0);
    expect_fault(&r, FB_FAULT_UNSUPPORTED_VERSION, 1, 77);
    send_raw(&r, 0, FB_MSG_INFO, 78, body, 3); /* version first, whatever the type and body */
    expect_fault(&r, FB_FAULT_UNSUPPORTED_VERSION, 1, 78);
    send_raw(&r, 1, 0x0B, 79, NULL, 0);
    expect_fault(&r, FB_FAULT_BAD_TYPE, 0x0B, 79);
    send_raw(&r, 1, 0x00, 80, NULL, 0);
    expect_fault(&r, FB_FAULT_BAD_TYPE, 0x00, 80);
    send_raw(&r, 1, 0xFF, 81, body, 2);
    expect_fault(&r, FB_FAULT_BAD_TYPE, 0xFF, 81);
    send_raw(&r, 1, FB_MSG_INFO, 82, NULL, 0); /* firmware -> host types are refused */
    expect_fault(&r, FB_FAULT_BAD_TYPE, FB_MSG_INFO, 82);
    send_raw(&r, 1, FB_MSG_OBSERVATION, 83, body, 8);
    expect_fault(&r, FB_FAULT_BAD_TYPE, FB_MSG_OBSERVATION, 83);
    send_raw(&r, 1, FB_MSG_STATUS, 84, body, 8);
    expect_fault(&r, FB_FAULT_BAD_TYPE, FB_MSG_STATUS, 84);
    send_raw(&r, 1, FB_MSG_FAULT, 85, NULL, 0);
    expect_fault(&r, FB_FAULT_BAD_TYPE, FB_MSG_FAULT, 85);

    seq = send_msg(&r, FB_MSG_HELLO, body, 1);
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 0, seq);
    seq = send_msg(&r, FB_MSG_RESET, body, 2);
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 0, seq);
    seq = send_msg(&r, FB_MSG_ESTOP, body, 1);
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 0, seq);
    CHECK_EQ_U(fw_core_flags(&r.core), 0); /* a malformed ESTOP does not latch */
    seq = send_msg(&r, FB_MSG_ACTION, NULL, 0);
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 2, seq);
    body[0] = 1;
    seq = send_msg(&r, FB_MSG_ACTION, body, 4); /* count 1, 3 value bytes */
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 2, seq);
    seq = send_action(&r, v, 1); /* well formed, wrong count */
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 2, seq);
    seq = send_action(&r, v, 3);
    expect_fault(&r, FB_FAULT_BAD_LENGTH, 2, seq);

    nan_action[0] = 0.5f;
    nan_action[1] = (float)nan("");
    seq = send_action(&r, nan_action, 2);
    expect_fault(&r, FB_FAULT_BAD_VALUE, 1, seq);
    nan_action[0] = (float)-HUGE_VAL;
    seq = send_action(&r, nan_action, 2);
    expect_fault(&r, FB_FAULT_BAD_VALUE, 0, seq);
    CHECK_EQ_U(r.f.actuator_writes, 0);
    CHECK_EQ_U(r.f.steps, 0);
    CHECK_EQ_U(fw_core_flags(&r.core), 0); /* refusals change nothing */

    /* Noise: dropped silently, counted. */
    n = fb_frame_encode(1, FB_MSG_HELLO, 5, NULL, 0, wire, sizeof wire);
    wire[n - 2] ^= 0x40; /* CRC byte */
    fw_core_feed(&r.core, wire, n, r.f.now);
    CHECK_EQ_U(r.core.stats.crc_errors, 1);
    fw_core_feed(&r.core, (const uint8_t *)"\x00\x05\x01\x02\x00", 5, r.f.now); /* COBS past the end */
    CHECK_EQ_U(r.core.stats.malformed_frames, 1);
    expect_silence(&r);
    CHECK_EQ_U(r.core.stats.rejected_messages, 14);
    CHECK_EQ_U(r.core.stats.refused_commands, 4);
}

static void test_resync(void)
{
    rig r;
    rx_frames got;
    uint8_t noise[1000], wire[FB_MAX_WIRE];
    size_t i, n;
    rig_init(&r);
    for (i = 0; i < sizeof noise; ++i) {
        noise[i] = (uint8_t)(i % 255u + 1u); /* no delimiter within MAX_ENCODED bytes */
    }
    fw_core_feed(&r.core, noise, sizeof noise, r.f.now);
    n = fb_frame_encode(1, FB_MSG_HELLO, 42, NULL, 0, wire, sizeof wire);
    /* byte by byte, as a UART delivers it */
    for (i = 0; i < n; ++i) {
        fw_core_feed(&r.core, wire + i, 1, r.f.now);
    }
    take(&r, &got);
    CHECK_EQ_U(got.n, 1);
    CHECK(got.n == 1 && got.msg[0].type == FB_MSG_INFO && got.msg[0].u.info.ack_seq == 42);
    CHECK_EQ_U(r.core.stats.malformed_frames, 1); /* the overlong chunk, once */
    /* Garbage right before a frame costs nothing: the frame's leading delimiter ends it. */
    fw_core_feed(&r.core, (const uint8_t *)"\x13\x37\xff", 3, r.f.now);
    fw_core_feed(&r.core, wire, n, r.f.now);
    take(&r, &got);
    CHECK(got.n == 1 && got.msg[0].type == FB_MSG_INFO);
}

static void test_reset(void)
{
    rig r;
    rx_frames got;
    const fb_msg *m;
    uint16_t seq;
    rig_init(&r);
    act2(&r, 5.0f, 1.0f); /* clipped, watchdog armed */
    take(&r, &got);
    CHECK_EQ_U(fw_core_flags(&r.core), FB_FLAG_CLIPPED | FB_FLAG_WATCHDOG_ARMED);
    r.f.obs[1] = 3.0f;
    seq = send_empty(&r, FB_MSG_RESET);
    m = one(&r, &got, FB_MSG_OBSERVATION);
    CHECK_EQ_U(m->u.observation.ack_seq, seq);
    CHECK_EQ_U(m->u.observation.flags, FB_FLAG_RESET);
    CHECK(m->u.observation.values[0] == 0.0f && m->u.observation.values[1] == 3.0f);
    CHECK_EQ_U(r.f.resets, 1);
    CHECK(r.f.actuators[0] == 0.0f); /* safe */
    fw_core_poll(&r.core, r.f.now + 1000); /* watchdog disarmed */
    expect_silence(&r);
    send_empty(&r, FB_MSG_HEARTBEAT);
    m = one(&r, &got, FB_MSG_STATUS);
    CHECK_EQ_U(m->u.status.flags, FB_FLAG_RESET);
    m = step2(&r, &got, 0.5f, 1.0f);
    CHECK_EQ_U(m->u.observation.flags, FB_FLAG_WATCHDOG_ARMED); /* RESET only on the first observation */

    rig_config(&r);
    r.cfg.capabilities = FB_CAP_LOCKSTEP;
    rig_start(&r);
    seq = send_empty(&r, FB_MSG_RESET);
    expect_fault(&r, FB_FAULT_RESET_UNSUPPORTED, 0, seq);
    CHECK_EQ_U(r.f.resets, 0);
}

static void test_terminated(void)
{
    rig r;
    rx_frames got;
    rig_init(&r);
    r.f.terminated = 1;
    CHECK_EQ_U(step2(&r, &got, 0.5f, 1.0f)->u.observation.flags, FB_FLAG_TERMINATED | FB_FLAG_WATCHDOG_ARMED);
    CHECK_EQ_U(r.f.steps, 1); /* actions are still applied */
    send_empty(&r, FB_MSG_RESET);
    r.f.terminated = 0;
    take(&r, &got);
    CHECK_EQ_U(fw_core_flags(&r.core), FB_FLAG_RESET);
}

static void test_plant_faults(void)
{
    rig r;
    rx_frames got;
    uint16_t seq;
    rig_init(&r);
    seq = act2(&r, 0.5f, 1.0f);
    take(&r, &got);
    r.f.sensor_error = 42;
    act2(&r, 0.25f, 1.0f); /* written and stepped, then the sensors fail */
    seq = (uint16_t)(seq + 1);
    expect_fault(&r, FB_FAULT_PLANT, 42, seq);
    CHECK_EQ_U(fw_core_flags(&r.core), FB_FLAG_FAULT);
    CHECK(r.f.actuators[0] == 0.0f);
    r.f.sensor_error = 0;
    expect_silence(&r);
    act2(&r, 0.5f, 1.0f);
    take(&r, &got);
    CHECK(got.n == 1 && got.msg[0].u.fault.reason == FB_FAULT_LATCHED);
    send_empty(&r, FB_MSG_CLEAR);
    take(&r, &got);

    r.f.actuator_error = 7; /* the actuator write fails: ref_seq is the last applied ACTION */
    act2(&r, 0.5f, 1.0f);
    expect_fault(&r, FB_FAULT_PLANT, 7, seq);
    r.f.actuator_error = 0;
    send_empty(&r, FB_MSG_CLEAR);
    take(&r, &got);

    r.f.step_error = 300; /* truncated to u8: 44 */
    seq = act2(&r, 0.5f, 1.0f);
    expect_fault(&r, FB_FAULT_PLANT, 44, seq);
    r.f.step_error = 0;
    send_empty(&r, FB_MSG_CLEAR);
    take(&r, &got);

    r.f.reset_error = 3;
    send_empty(&r, FB_MSG_RESET);
    expect_fault(&r, FB_FAULT_PLANT, 3, seq);
    CHECK_EQ_U(r.core.stats.plant_faults, 4);
}

static void test_sequence_numbers(void)
{
    rig r;
    rx_frames got;
    int i;
    rig_init(&r);
    r.core.tx_seq = 0xFFFE;
    for (i = 0; i < 4; ++i) {
        send_empty(&r, FB_MSG_HEARTBEAT);
    }
    take(&r, &got);
    CHECK_EQ_U(got.n, 4);
    CHECK(got.seq[0] == 0xFFFE && got.seq[1] == 0xFFFF && got.seq[2] == 0 && got.seq[3] == 1);
    r.host_seq = 0xFFFF; /* the host's seq wraps too: answers name it */
    send_empty(&r, FB_MSG_HEARTBEAT);
    send_empty(&r, FB_MSG_HEARTBEAT);
    take(&r, &got);
    CHECK(got.n == 2 && got.msg[0].u.status.ack_seq == 0xFFFF && got.msg[1].u.status.ack_seq == 0);
}

static void test_real_time_stream(void)
{
    rig r;
    rx_frames got;
    int i, streamed = 0;
    uint16_t seq;
    rig_config(&r);
    r.cfg.capabilities = FB_CAP_CAN_RESET;
    r.cfg.control_period_us = 2500; /* 400 Hz on a millisecond clock */
    r.f.now = 0;
    rig_start(&r);
    for (i = 0; i <= 100; ++i) {
        r.f.now = (uint32_t)i;
        fw_core_poll(&r.core, r.f.now);
    }
    take(&r, &got);
    streamed = got.n;
    CHECK_MSG(streamed == 41, "%d observations in 100 ms at 2.5 ms", streamed); /* t = 0, 2.5, ..., 100 */
    CHECK(got.msg[0].type == FB_MSG_OBSERVATION && got.msg[0].u.observation.ack_seq == 0);
    CHECK_EQ_U(r.f.steps, 0); /* real time: no plant_step */

    rig_config(&r);
    r.cfg.capabilities = 0;
    r.f.now = 0;
    rig_start(&r);
    fw_core_poll(&r.core, 0);
    take(&r, &got);
    CHECK_EQ_U(got.n, 1);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, 0), 20);
    r.f.now = 5;
    seq = act2(&r, 0.5f, 1.0f); /* no immediate answer */
    expect_silence(&r);
    CHECK(r.f.actuators[0] == 0.5f);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, 5), 15);
    fw_core_poll(&r.core, 19);
    expect_silence(&r);
    r.f.now = 20;
    fw_core_poll(&r.core, 20);
    take(&r, &got);
    CHECK(got.n == 1 && got.msg[0].type == FB_MSG_OBSERVATION && got.msg[0].u.observation.ack_seq == seq &&
          got.msg[0].u.observation.flags == FB_FLAG_WATCHDOG_ARMED);
    /* A stall of a second: one observation, no burst, then the period again. */
    r.f.now = 1020;
    fw_core_poll(&r.core, 1020);
    take(&r, &got);
    CHECK_EQ_U(got.n, 2); /* the watchdog FAULT and one observation */
    CHECK(got.msg[0].type == FB_MSG_FAULT && got.msg[0].u.fault.reason == FB_FAULT_WATCHDOG);
    CHECK(got.msg[1].type == FB_MSG_OBSERVATION && (got.msg[1].u.observation.flags & FB_FLAG_FAULT));
    fw_core_poll(&r.core, 1021);
    expect_silence(&r);
    CHECK_EQ_U(fw_core_ms_until_due(&r.core, 1021), 19);
    /* A sensor failure during the stream: FAULT(PLANT) naming the last applied ACTION. */
    r.f.sensor_error = 9;
    r.f.now = 1040;
    fw_core_poll(&r.core, 1040);
    expect_fault(&r, FB_FAULT_PLANT, 9, seq);
}

/* POLICY mode's policy: twice the first observation, clipped later by the core; NaN when asked to fail. */
static int policy_nan;

static void f_policy(void *ctx, const float *obs, float *action)
{
    (void)ctx;
    action[0] = policy_nan ? obs[0] * (0.0f / 0.0f) : 2.0f * obs[0] + 0.25f;
    action[1] = 3.0f; /* above the limit: clipped to 2 */
}

static void test_policy_mode(void)
{
    rig r;
    rx_frames got;
    rig_config(&r);
    r.hal.policy = f_policy;
    CHECK_EQ_U(fw_core_init(&r.core, &r.cfg, &r.hal, r.f.now), FW_INIT_BAD_HAL); /* a policy is not LOCKSTEP */
    r.cfg.capabilities = FB_CAP_CAN_RESET; /* real time, the simulated plant stepped by the firmware's tick */
    r.f.now = 0;
    rig_start(&r);
    fw_core_poll(&r.core, 0);
    take(&r, &got);
    CHECK_EQ_U(r.f.steps, 0); /* before RESET: telemetry only, nothing acts */
    CHECK_EQ_U(r.f.actuator_writes, 0);
    send_empty(&r, FB_MSG_RESET);
    take(&r, &got);
    CHECK(got.n == 1 && (got.msg[0].u.observation.flags & FB_FLAG_RESET));
    CHECK(r.f.actuator_writes == 1 && r.f.actuators[0] == 0.25f && r.f.actuators[1] == 2.0f); /* acted at once */
    r.f.now = 20;
    fw_core_poll(&r.core, 20);
    take(&r, &got);
    CHECK_EQ_U(r.f.steps, 1); /* the plant moved one period under 0.25: obs[0] = 0.25 */
    CHECK(got.n == 1 && got.msg[0].u.observation.values[0] == 0.25f &&
          (got.msg[0].u.observation.flags & FB_FLAG_CLIPPED));
    CHECK(r.f.actuators[0] == 0.75f); /* 2 * 0.25 + 0.25, applied on that observation */
    CHECK(!(r.core.wd_armed)); /* the firmware's own actions arm no watchdog */
    send_empty(&r, FB_MSG_ESTOP);
    send_empty(&r, FB_MSG_CLEAR); /* released before the next tick: the episode stays over */
    take(&r, &got);
    r.f.now = 40;
    fw_core_poll(&r.core, 40);
    take(&r, &got);
    CHECK_EQ_U(r.f.steps, 1); /* stopped: no step, no action, the stream goes on */
    CHECK(got.n == 1 && !(got.msg[0].u.observation.flags & FB_FLAG_ESTOP) && r.f.actuators[0] == 0.0f);
    r.f.now = 60;
    fw_core_poll(&r.core, 60);
    CHECK_EQ_U(r.f.steps, 1); /* CLEAR does not restart the policy: RESET does */
    take(&r, &got);
    r.f.terminated = 1;
    send_empty(&r, FB_MSG_RESET);
    take(&r, &got);
    CHECK(r.f.actuators[0] == 0.0f && !r.core.policy_running); /* terminal: the safe state, the episode over */
    r.f.terminated = 0;
    policy_nan = 1;
    send_empty(&r, FB_MSG_RESET);
    take(&r, &got);
    CHECK(got.n == 2 && got.msg[1].type == FB_MSG_FAULT && got.msg[1].u.fault.reason == FB_FAULT_PLANT &&
          got.msg[1].u.fault.detail == FW_POLICY_FAULT);
    CHECK(r.core.fault && r.f.actuators[0] == 0.0f);
    policy_nan = 0;
}

static void test_run_uses_hal_clock(void)
{
    rig r;
    rx_frames got;
    uint8_t wire[FB_MAX_WIRE];
    size_t n;
    rig_init(&r);
    r.f.now = 4321;
    n = fb_frame_encode(1, FB_MSG_HEARTBEAT, 3, NULL, 0, wire, sizeof wire);
    fw_core_run(&r.core, wire, n);
    take(&r, &got);
    CHECK(got.n == 1 && got.msg[0].u.status.t_ms == 4321 && got.msg[0].u.status.ack_seq == 3);
}

static void test_noise_never_breaks_the_core(void)
{
    rig r;
    rx_frames got;
    uint32_t state = 99u;
    uint8_t noise[300];
    int round, answered = 0;
    size_t k;
    rig_init(&r);
    for (round = 0; round < 500; ++round) {
        uint8_t wire[FB_MAX_WIRE];
        size_t n;
        for (k = 0; k < sizeof noise; ++k) {
            state = state * 1664525u + 1013904223u;
            noise[k] = (uint8_t)(state >> 24);
        }
        fw_core_feed(&r.core, noise, (state >> 8) % sizeof noise, r.f.now);
        r.f.out_len = 0; /* noise may form frames by chance (CRC passes 1 in 65536): ignore their answers */
        n = fb_frame_encode(1, FB_MSG_HEARTBEAT, (uint16_t)round, NULL, 0, wire, sizeof wire);
        fw_core_feed(&r.core, wire, n, r.f.now);
        take(&r, &got);
        if (got.n >= 1 && got.msg[got.n - 1].type == FB_MSG_STATUS &&
            got.msg[got.n - 1].u.status.ack_seq == (uint16_t)round) {
            ++answered;
        }
    }
    CHECK_EQ_U(answered, 500);
}

int main(void)
{
    test_hello();
    test_init_writes_safe_state_and_checks_config();
    test_action_lockstep();
    test_clip();
    test_estop_latch();
    test_watchdog();
    test_resend_does_not_feed_the_watchdog();
    test_watchdog_clock_wrap();
    test_no_watchdog();
    test_bad_frames();
    test_resync();
    test_reset();
    test_terminated();
    test_plant_faults();
    test_sequence_numbers();
    test_real_time_stream();
    test_policy_mode();
    test_run_uses_hal_clock();
    test_noise_never_breaks_the_core();
    printf("test_core: %d checks, %d failed (sizeof(fw_core) = %lu bytes)\n", check_count, check_failures,
           (unsigned long)sizeof(fw_core));
    return check_failures == 0 ? 0 : 1;
}
