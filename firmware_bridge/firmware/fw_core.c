/* fw_core.c - the firmware's protocol state machine. See fw_core.h and hal.h. */
#include "fw_core.h"

#include <string.h>

/* Signed distance from b to a on the wrapping millisecond clock: > 0 when a is after b. */
static int32_t ms_diff(uint32_t a, uint32_t b)
{
    uint32_t d = a - b;
    return d <= 0x7FFFFFFFu ? (int32_t)d : -(int32_t)(0xFFFFFFFFu - d) - 1;
}

/* ----- outputs --------------------------------------------------------------------------------------- */

uint16_t fw_core_flags(const fw_core *core)
{
    uint16_t flags = 0;
    if (core->estop) flags |= FB_FLAG_ESTOP;
    if (core->fault) flags |= FB_FLAG_FAULT;
    if (core->clipped) flags |= FB_FLAG_CLIPPED;
    if (core->wd_armed) flags |= FB_FLAG_WATCHDOG_ARMED;
    if (core->episode_start) flags |= FB_FLAG_RESET;
    if (core->hal->terminated != NULL && core->hal->terminated(core->hal->ctx)) flags |= FB_FLAG_TERMINATED;
    return flags;
}

/* Frame the body core->body[0 .. length-1] as `type` and write it to the serial port. */
static void send(fw_core *core, uint8_t type, size_t length)
{
    size_t n = fb_frame_encode(FB_PROTOCOL_VERSION, type, core->tx_seq, core->body, length, core->wire,
                               sizeof core->wire);
    if (n == 0) {
        core->stats.tx_errors++;
        return;
    }
    core->tx_seq = (uint16_t)(core->tx_seq + 1u);
    core->stats.frames_sent++;
    core->hal->serial_write(core->hal->ctx, core->wire, n);
}

static void send_status(fw_core *core, uint16_t ack_seq, uint32_t now)
{
    fb_put_u16(core->body, ack_seq);
    fb_put_u32(core->body + 2, now);
    fb_put_u16(core->body + 6, fw_core_flags(core));
    send(core, FB_MSG_STATUS, FB_STATUS_SIZE);
}

static void send_fault(fw_core *core, uint8_t reason, uint8_t detail, uint16_t ref_seq, uint32_t now)
{
    core->body[0] = reason;
    core->body[1] = detail;
    fb_put_u16(core->body + 2, ref_seq);
    fb_put_u32(core->body + 4, now);
    fb_put_u16(core->body + 8, fw_core_flags(core));
    send(core, FB_MSG_FAULT, FB_FAULT_SIZE);
}

static void send_info(fw_core *core, uint16_t ack_seq)
{
    const fw_config *cfg = core->cfg;
    uint8_t *b = core->body;
    size_t at = FB_INFO_HEAD_SIZE, i, id_len = strlen(cfg->firmware_id);
    fb_put_u16(b, ack_seq);
    b[2] = cfg->obs_dim;
    b[3] = cfg->action_dim;
    b[4] = cfg->capabilities;
    fb_put_u32(b + 5, cfg->control_period_us);
    fb_put_u16(b + 9, cfg->watchdog_ms);
    for (i = 0; i < cfg->action_dim; ++i, at += 4) {
        fb_put_f32(b + at, cfg->action_low[i]);
    }
    for (i = 0; i < cfg->action_dim; ++i, at += 4) {
        fb_put_f32(b + at, cfg->action_high[i]);
    }
    b[at++] = (uint8_t)id_len;
    memcpy(b + at, cfg->firmware_id, id_len);
    send(core, FB_MSG_INFO, at + id_len);
}

/* Actuators safe, fault latch set, watchdog disarmed; FAULT(PLANT, detail = HAL code, ref_seq = the last
 * applied ACTION). */
static void plant_fault(fw_core *core, int code, uint32_t now)
{
    core->fault = 1;
    core->wd_armed = 0;
    core->hal->write_safe(core->hal->ctx, core->safe, core->cfg->action_dim);
    core->stats.plant_faults++;
    send_fault(core, FB_FAULT_PLANT, (uint8_t)code, core->last_action_seq, now);
}

/* Sample the sensors and send OBSERVATION(ack_seq), or FAULT(PLANT) if they fail. */
static void send_observation(fw_core *core, uint16_t ack_seq, uint32_t now)
{
    uint8_t i, n = core->cfg->obs_dim;
    int code = core->hal->read_sensors(core->hal->ctx, core->obs, n);
    if (code != 0) {
        plant_fault(core, code, now);
        return;
    }
    fb_put_u16(core->body, ack_seq);
    fb_put_u32(core->body + 2, now);
    fb_put_u16(core->body + 6, fw_core_flags(core));
    core->body[8] = n;
    for (i = 0; i < n; ++i) {
        fb_put_f32(core->body + FB_OBSERVATION_HEAD_SIZE + 4u * i, core->obs[i]);
    }
    send(core, FB_MSG_OBSERVATION, FB_OBSERVATION_HEAD_SIZE + 4u * n);
}

/* ----- the rules ------------------------------------------------------------------------------------- */

static void check_watchdog(fw_core *core, uint32_t now)
{
    if (!core->wd_armed || ms_diff(now, core->wd_deadline_ms) <= 0) {
        return;
    }
    core->fault = 1;
    core->wd_armed = 0;
    core->hal->write_safe(core->hal->ctx, core->safe, core->cfg->action_dim);
    core->stats.watchdog_trips++;
    send_fault(core, FB_FAULT_WATCHDOG, 0, core->last_action_seq, now);
}

/* Clip action[] (finite) to the limits into core->applied, set CLIPPED, write it; the HAL's code. */
static int apply(fw_core *core, const float *action)
{
    const fw_config *cfg = core->cfg;
    uint8_t i, clipped = 0;
    for (i = 0; i < cfg->action_dim; ++i) {
        float v = action[i];
        if (v < cfg->action_low[i]) {
            v = cfg->action_low[i];
            clipped = 1;
        } else if (v > cfg->action_high[i]) {
            v = cfg->action_high[i];
            clipped = 1;
        }
        core->applied[i] = v;
    }
    core->clipped = clipped;
    return core->hal->write_actuators(core->hal->ctx, core->applied, cfg->action_dim);
}

/* POLICY mode: the policy's action on the sensors sampled last (core->obs), applied. A terminal state or a
 * non-finite action ends the episode (the latter as a plant fault); the actuators then hold the safe state. */
static void policy_act(fw_core *core, uint32_t now)
{
    float action[FW_MAX_ACTION];
    uint8_t i;
    int code;
    if (core->hal->terminated != NULL && core->hal->terminated(core->hal->ctx)) {
        core->policy_running = 0;
        core->hal->write_safe(core->hal->ctx, core->safe, core->cfg->action_dim);
        return;
    }
    core->hal->policy(core->hal->ctx, core->obs, action);
    for (i = 0; i < core->cfg->action_dim; ++i) {
        if (!fb_f32_finite(action[i])) {
            core->policy_running = 0;
            plant_fault(core, FW_POLICY_FAULT, now);
            return;
        }
    }
    code = apply(core, action);
    if (code != 0) {
        core->policy_running = 0;
        plant_fault(core, code, now);
        return;
    }
    core->episode_start = 0;
}

/* POLICY mode, one control tick: the plant advances one period under the action of the last tick (a
 * simulator; hardware moves by itself), the sensors stream as OBSERVATION, and the policy acts on them. */
static void policy_tick(fw_core *core, uint32_t now)
{
    int code;
    if (!core->policy_running || core->estop || core->fault) {
        core->policy_running = 0;
        send_observation(core, core->ack_seq, now);
        return;
    }
    if (core->hal->plant_step != NULL) {
        code = core->hal->plant_step(core->hal->ctx);
        if (code != 0) {
            core->policy_running = 0;
            plant_fault(core, code, now);
            return;
        }
    }
    send_observation(core, core->ack_seq, now);
    if (!core->fault) {
        policy_act(core, now);
    }
}

static void on_action(fw_core *core, const fb_frame *frame, uint32_t now)
{
    const fw_config *cfg = core->cfg;
    fb_action action;
    uint8_t i;
    int code;
    if (fb_decode_action(frame->body, frame->length, &action) != FB_OK) {
        core->stats.rejected_messages++;
        send_fault(core, FB_FAULT_BAD_LENGTH, cfg->action_dim, frame->seq, now);
        return;
    }
    if (core->estop || core->fault) {
        core->stats.refused_commands++;
        send_fault(core, FB_FAULT_LATCHED, 0, frame->seq, now);
        return;
    }
    if (action.count != cfg->action_dim) {
        core->stats.refused_commands++;
        send_fault(core, FB_FAULT_BAD_LENGTH, cfg->action_dim, frame->seq, now);
        return;
    }
    if (core->last_cmd_type == FB_MSG_ACTION && core->last_cmd_seq == frame->seq) {
        /* A resend: the command already holds, applied once, and is answered again. It does not feed the watchdog:
         * a command holds for at most watchdog_ms from its application, however often it is resent. */
        core->stats.resends++;
        if (cfg->capabilities & FB_CAP_LOCKSTEP) {
            send_observation(core, frame->seq, now);
        }
        return;
    }
    for (i = 0; i < action.count; ++i) {
        if (!fb_f32_finite(action.values[i])) {
            core->stats.refused_commands++;
            send_fault(core, FB_FAULT_BAD_VALUE, i, frame->seq, now);
            return;
        }
    }
    code = apply(core, action.values);
    if (code != 0) {
        plant_fault(core, code, now); /* not applied: names the ACTION before */
        return;
    }
    core->last_action_seq = core->ack_seq = frame->seq;
    core->last_cmd_type = FB_MSG_ACTION;
    core->last_cmd_seq = frame->seq;
    core->episode_start = 0;
    if (cfg->watchdog_ms != 0) {
        core->wd_armed = 1;
        core->wd_deadline_ms = now + cfg->watchdog_ms;
    }
    if (cfg->capabilities & FB_CAP_LOCKSTEP) {
        code = core->hal->plant_step(core->hal->ctx);
        if (code != 0) {
            plant_fault(core, code, now);
            return;
        }
        send_observation(core, frame->seq, now);
    }
    /* Real time: the next tick's OBSERVATION answers it. */
}

static void on_reset(fw_core *core, uint16_t seq, uint32_t now)
{
    int code;
    if (!(core->cfg->capabilities & FB_CAP_CAN_RESET)) {
        core->stats.refused_commands++;
        send_fault(core, FB_FAULT_RESET_UNSUPPORTED, 0, seq, now);
        return;
    }
    if (core->estop || core->fault) {
        core->stats.refused_commands++;
        send_fault(core, FB_FAULT_LATCHED, 0, seq, now);
        return;
    }
    if (core->last_cmd_type == FB_MSG_RESET && core->last_cmd_seq == seq) {
        /* A resend: the episode has already started. */
        core->stats.resends++;
        send_observation(core, seq, now);
        return;
    }
    code = core->hal->plant_reset(core->hal->ctx);
    if (code != 0) {
        plant_fault(core, code, now);
        return;
    }
    core->wd_armed = 0;
    core->clipped = 0;
    core->hal->write_safe(core->hal->ctx, core->safe, core->cfg->action_dim);
    core->ack_seq = seq;
    core->last_cmd_type = FB_MSG_RESET;
    core->last_cmd_seq = seq;
    core->episode_start = 1;
    send_observation(core, seq, now);
    if (core->hal->policy != NULL && !core->fault) {
        /* The first action now, on the state the answer carries: each streamed OBSERVATION is the next. */
        core->policy_running = 1;
        policy_act(core, now);
    }
}

static void handle(fw_core *core, const fb_frame *frame, uint32_t now)
{
    /* Order: version, type (undefined or firmware -> host), body layout, then the message's rule. */
    if (frame->version != FB_PROTOCOL_VERSION) {
        core->stats.rejected_messages++;
        send_fault(core, FB_FAULT_UNSUPPORTED_VERSION, FB_PROTOCOL_VERSION, frame->seq, now);
        return;
    }
    if (!fb_msg_host_to_firmware(frame->type)) {
        core->stats.rejected_messages++;
        send_fault(core, FB_FAULT_BAD_TYPE, frame->type, frame->seq, now);
        return;
    }
    if (frame->type == FB_MSG_ACTION) {
        on_action(core, frame, now);
        return;
    }
    if (frame->length != 0) {
        core->stats.rejected_messages++;
        send_fault(core, FB_FAULT_BAD_LENGTH, 0, frame->seq, now);
        return;
    }
    switch (frame->type) {
    case FB_MSG_HELLO:
        core->last_cmd_type = 0; /* a new session: its host may count from 0 again */
        send_info(core, frame->seq);
        break;
    case FB_MSG_HEARTBEAT:
        send_status(core, frame->seq, now);
        break;
    case FB_MSG_ESTOP:
        core->estop = 1;
        core->wd_armed = 0;
        core->policy_running = 0; /* POLICY mode: the episode is over; CLEAR does not restart it, RESET does */
        core->hal->write_safe(core->hal->ctx, core->safe, core->cfg->action_dim);
        send_status(core, frame->seq, now);
        break;
    case FB_MSG_CLEAR:
        /* Actuators stay safe until the next applied ACTION. */
        core->estop = 0;
        core->fault = 0;
        core->wd_armed = 0;
        send_status(core, frame->seq, now);
        break;
    case FB_MSG_RESET:
        on_reset(core, frame->seq, now);
        break;
    default:
        break; /* unreachable: fb_msg_host_to_firmware() */
    }
}

/* ----- public ------------------------------------------------------------------------------------------ */

static int printable_id(const char *id)
{
    size_t i;
    if (id == NULL) {
        return 0;
    }
    for (i = 0; id[i] != '\0'; ++i) {
        if (i >= FB_MAX_FIRMWARE_ID || (unsigned char)id[i] < 0x20u || (unsigned char)id[i] >= 0x7Fu) {
            return 0;
        }
    }
    return 1;
}

fw_init_result fw_core_init(fw_core *core, const fw_config *cfg, const fw_hal *hal, uint32_t now_ms)
{
    uint8_t i;
    if (cfg->obs_dim == 0 || cfg->obs_dim > FW_MAX_OBS || cfg->action_dim == 0 ||
        cfg->action_dim > FW_MAX_ACTION) {
        return FW_INIT_BAD_SIZES;
    }
    for (i = 0; i < cfg->action_dim; ++i) {
        if (!fb_f32_finite(cfg->action_low[i]) || !fb_f32_finite(cfg->action_high[i]) ||
            !(cfg->action_low[i] <= cfg->action_high[i]) ||
            (cfg->has_safe_action && !fb_f32_finite(cfg->safe_action[i]))) {
            return FW_INIT_BAD_LIMITS;
        }
    }
    if (cfg->control_period_us == 0) {
        return FW_INIT_BAD_TIMING;
    }
    if (!printable_id(cfg->firmware_id)) {
        return FW_INIT_BAD_ID;
    }
    if (hal->read_sensors == NULL || hal->write_actuators == NULL || hal->write_safe == NULL ||
        hal->serial_write == NULL || ((cfg->capabilities & FB_CAP_CAN_RESET) && hal->plant_reset == NULL) ||
        ((cfg->capabilities & FB_CAP_LOCKSTEP) && (hal->plant_step == NULL || hal->policy != NULL))) {
        return FW_INIT_BAD_HAL;
    }
    memset(core, 0, sizeof *core);
    core->cfg = cfg;
    core->hal = hal;
    fb_rx_init(&core->rx);
    for (i = 0; i < cfg->action_dim; ++i) {
        float v = cfg->has_safe_action ? cfg->safe_action[i] : 0.0f;
        v = v < cfg->action_low[i] ? cfg->action_low[i] : v;
        v = v > cfg->action_high[i] ? cfg->action_high[i] : v;
        core->safe[i] = v;
    }
    core->next_tick_ms = now_ms;
    core->tick_frac_us = 0;
    hal->write_safe(hal->ctx, core->safe, cfg->action_dim);
    return FW_INIT_OK;
}

void fw_core_feed(fw_core *core, const uint8_t *data, size_t n, uint32_t now_ms)
{
    size_t i;
    fb_frame frame;
    fb_err err = FB_OK;
    for (i = 0; i < n; ++i) {
        switch (fb_rx_push(&core->rx, data[i], &frame, &err)) {
        case FB_RX_FRAME:
            core->stats.frames_received++;
            /* An ACTION that comes after the deadline is too late: the watchdog trips first. */
            check_watchdog(core, now_ms);
            handle(core, &frame, now_ms);
            break;
        case FB_RX_ERROR:
            if (err == FB_ERR_CRC) {
                core->stats.crc_errors++;
            } else {
                core->stats.malformed_frames++;
            }
            break;
        case FB_RX_NONE:
            break;
        }
    }
}

static void advance_tick(fw_core *core)
{
    uint32_t period = core->cfg->control_period_us;
    core->next_tick_ms += period / 1000u;
    core->tick_frac_us = (uint16_t)(core->tick_frac_us + period % 1000u);
    if (core->tick_frac_us >= 1000u) {
        core->tick_frac_us = (uint16_t)(core->tick_frac_us - 1000u);
        core->next_tick_ms++;
    }
}

void fw_core_poll(fw_core *core, uint32_t now_ms)
{
    check_watchdog(core, now_ms);
    if (core->cfg->capabilities & FB_CAP_LOCKSTEP) {
        return;
    }
    if (ms_diff(now_ms, core->next_tick_ms) >= 0) {
        advance_tick(core);
        if (ms_diff(now_ms, core->next_tick_ms) >= 0) {
            /* More than a period late (a stall): skip the missed ticks rather than burst. */
            core->next_tick_ms = now_ms;
            core->tick_frac_us = 0;
            advance_tick(core);
        }
        if (core->hal->policy != NULL) {
            policy_tick(core, now_ms);
        } else {
            send_observation(core, core->ack_seq, now_ms);
        }
    }
}

void fw_core_run(fw_core *core, const uint8_t *data, size_t n)
{
    uint32_t now = core->hal->millis(core->hal->ctx);
    fw_core_feed(core, data, n, now);
    fw_core_poll(core, now);
}

uint32_t fw_core_ms_until_due(const fw_core *core, uint32_t now_ms)
{
    uint32_t wait = UINT32_MAX;
    int32_t d;
    if (core->wd_armed) {
        d = ms_diff(core->wd_deadline_ms, now_ms) + 1; /* trips when now > deadline */
        wait = d > 0 ? (uint32_t)d : 0u;
    }
    if (!(core->cfg->capabilities & FB_CAP_LOCKSTEP)) {
        d = ms_diff(core->next_tick_ms, now_ms);
        if (d <= 0) {
            return 0;
        }
        if ((uint32_t)d < wait) {
            wait = (uint32_t)d;
        }
    }
    return wait;
}
