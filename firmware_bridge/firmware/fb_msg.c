/* fb_msg.c - message bodies. See fb_msg.h. */
#include "fb_msg.h"

#include <float.h>
#include <string.h>

/* The float layout this code relies on: IEEE-754 binary32. */
#if FLT_MANT_DIG != 24 || FLT_MAX_EXP != 128
#error "fb_msg.c needs IEEE-754 binary32 floats"
#endif
typedef char fb_float_is_32_bits[(sizeof(float) == 4 && sizeof(uint32_t) == 4) ? 1 : -1];

/* ----- little-endian helpers ------------------------------------------------------------------------ */

void fb_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void fb_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

uint32_t fb_f32_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

void fb_put_f32(uint8_t *p, float v)
{
    fb_put_u32(p, fb_f32_bits(v));
}

uint16_t fb_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t fb_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

float fb_get_f32(const uint8_t *p)
{
    uint32_t bits = fb_get_u32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

int fb_f32_finite(float v)
{
    return ((fb_f32_bits(v) >> 23) & 0xFFu) != 0xFFu;
}

/* ----- types ------------------------------------------------------------------------------------------ */

int fb_msg_type_known(uint8_t type)
{
    return type >= FB_MSG_HELLO && type <= FB_MSG_FAULT;
}

int fb_msg_host_to_firmware(uint8_t type)
{
    switch (type) {
    case FB_MSG_HELLO:
    case FB_MSG_ACTION:
    case FB_MSG_HEARTBEAT:
    case FB_MSG_ESTOP:
    case FB_MSG_CLEAR:
    case FB_MSG_RESET:
        return 1;
    default:
        return 0;
    }
}

static int printable(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20u || c >= 0x7Fu) {
            return 0;
        }
    }
    return 1;
}

static void put_floats(uint8_t *p, const float *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        fb_put_f32(p + 4 * i, v[i]);
    }
}

static void get_floats(const uint8_t *p, float *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        v[i] = fb_get_f32(p + 4 * i);
    }
}

/* ----- encoding ---------------------------------------------------------------------------------------- */

int fb_encode_info(const fb_info *m, uint8_t *body, size_t cap)
{
    size_t n, at;
    if (m->obs_dim > FB_MAX_OBS_DIM || m->action_dim > FB_MAX_ACTION_DIM || m->id_len > FB_MAX_FIRMWARE_ID ||
        !printable(m->firmware_id, m->id_len)) {
        return -1;
    }
    n = FB_INFO_HEAD_SIZE + 8u * m->action_dim + 1u + m->id_len;
    if (cap < n) {
        return -1;
    }
    fb_put_u16(body, m->ack_seq);
    body[2] = m->obs_dim;
    body[3] = m->action_dim;
    body[4] = m->capabilities;
    fb_put_u32(body + 5, m->control_period_us);
    fb_put_u16(body + 9, m->watchdog_ms);
    at = FB_INFO_HEAD_SIZE;
    put_floats(body + at, m->action_low, m->action_dim);
    at += 4u * m->action_dim;
    put_floats(body + at, m->action_high, m->action_dim);
    at += 4u * m->action_dim;
    body[at++] = m->id_len;
    memcpy(body + at, m->firmware_id, m->id_len);
    return (int)n;
}

int fb_encode_action(const fb_action *m, uint8_t *body, size_t cap)
{
    size_t n = 1u + 4u * m->count;
    if (m->count > FB_MAX_ACTION_DIM || cap < n) {
        return -1;
    }
    body[0] = m->count;
    put_floats(body + 1, m->values, m->count);
    return (int)n;
}

int fb_encode_observation(const fb_observation *m, uint8_t *body, size_t cap)
{
    size_t n = FB_OBSERVATION_HEAD_SIZE + 4u * m->count;
    if (m->count > FB_MAX_OBS_DIM || cap < n) {
        return -1;
    }
    fb_put_u16(body, m->ack_seq);
    fb_put_u32(body + 2, m->t_ms);
    fb_put_u16(body + 6, m->flags);
    body[8] = m->count;
    put_floats(body + FB_OBSERVATION_HEAD_SIZE, m->values, m->count);
    return (int)n;
}

int fb_encode_status(const fb_status *m, uint8_t *body, size_t cap)
{
    if (cap < FB_STATUS_SIZE) {
        return -1;
    }
    fb_put_u16(body, m->ack_seq);
    fb_put_u32(body + 2, m->t_ms);
    fb_put_u16(body + 6, m->flags);
    return (int)FB_STATUS_SIZE;
}

int fb_encode_fault(const fb_fault *m, uint8_t *body, size_t cap)
{
    if (cap < FB_FAULT_SIZE) {
        return -1;
    }
    body[0] = m->reason;
    body[1] = m->detail;
    fb_put_u16(body + 2, m->ref_seq);
    fb_put_u32(body + 4, m->t_ms);
    fb_put_u16(body + 8, m->flags);
    return (int)FB_FAULT_SIZE;
}

int fb_encode_body(const fb_msg *m, uint8_t *body, size_t cap)
{
    switch (m->type) {
    case FB_MSG_HELLO:
    case FB_MSG_HEARTBEAT:
    case FB_MSG_ESTOP:
    case FB_MSG_CLEAR:
    case FB_MSG_RESET:
        return 0;
    case FB_MSG_INFO: return fb_encode_info(&m->u.info, body, cap);
    case FB_MSG_ACTION: return fb_encode_action(&m->u.action, body, cap);
    case FB_MSG_OBSERVATION: return fb_encode_observation(&m->u.observation, body, cap);
    case FB_MSG_STATUS: return fb_encode_status(&m->u.status, body, cap);
    case FB_MSG_FAULT: return fb_encode_fault(&m->u.fault, body, cap);
    default: return -1;
    }
}

/* ----- decoding ---------------------------------------------------------------------------------------- */

fb_err fb_decode_info(const uint8_t *body, size_t n, fb_info *out)
{
    size_t id_at, id_len;
    uint8_t obs_dim, action_dim;
    if (n < FB_INFO_HEAD_SIZE) {
        return FB_ERR_BODY;
    }
    obs_dim = body[2];
    action_dim = body[3];
    if (obs_dim > FB_MAX_OBS_DIM || action_dim > FB_MAX_ACTION_DIM) {
        return FB_ERR_BODY;
    }
    id_at = FB_INFO_HEAD_SIZE + 8u * action_dim;
    if (n <= id_at) {
        return FB_ERR_BODY;
    }
    id_len = body[id_at];
    if (n != id_at + 1u + id_len || id_len > FB_MAX_FIRMWARE_ID ||
        !printable((const char *)body + id_at + 1, id_len)) {
        return FB_ERR_BODY;
    }
    out->ack_seq = fb_get_u16(body);
    out->obs_dim = obs_dim;
    out->action_dim = action_dim;
    out->capabilities = body[4];
    out->control_period_us = fb_get_u32(body + 5);
    out->watchdog_ms = fb_get_u16(body + 9);
    get_floats(body + FB_INFO_HEAD_SIZE, out->action_low, action_dim);
    get_floats(body + FB_INFO_HEAD_SIZE + 4u * action_dim, out->action_high, action_dim);
    out->id_len = (uint8_t)id_len;
    memcpy(out->firmware_id, body + id_at + 1, id_len);
    out->firmware_id[id_len] = '\0';
    return FB_OK;
}

fb_err fb_decode_action(const uint8_t *body, size_t n, fb_action *out)
{
    if (n < 1 || body[0] > FB_MAX_ACTION_DIM || n != 1u + 4u * body[0]) {
        return FB_ERR_BODY;
    }
    out->count = body[0];
    get_floats(body + 1, out->values, out->count);
    return FB_OK;
}

fb_err fb_decode_observation(const uint8_t *body, size_t n, fb_observation *out)
{
    uint8_t count;
    if (n < FB_OBSERVATION_HEAD_SIZE) {
        return FB_ERR_BODY;
    }
    count = body[8];
    if (count > FB_MAX_OBS_DIM || n != FB_OBSERVATION_HEAD_SIZE + 4u * count) {
        return FB_ERR_BODY;
    }
    out->ack_seq = fb_get_u16(body);
    out->t_ms = fb_get_u32(body + 2);
    out->flags = fb_get_u16(body + 6);
    out->count = count;
    get_floats(body + FB_OBSERVATION_HEAD_SIZE, out->values, count);
    return FB_OK;
}

fb_err fb_decode_status(const uint8_t *body, size_t n, fb_status *out)
{
    if (n != FB_STATUS_SIZE) {
        return FB_ERR_BODY;
    }
    out->ack_seq = fb_get_u16(body);
    out->t_ms = fb_get_u32(body + 2);
    out->flags = fb_get_u16(body + 6);
    return FB_OK;
}

fb_err fb_decode_fault(const uint8_t *body, size_t n, fb_fault *out)
{
    if (n != FB_FAULT_SIZE) {
        return FB_ERR_BODY;
    }
    out->reason = body[0];
    out->detail = body[1];
    out->ref_seq = fb_get_u16(body + 2);
    out->t_ms = fb_get_u32(body + 4);
    out->flags = fb_get_u16(body + 8);
    return FB_OK;
}

fb_err fb_decode_message(const fb_frame *frame, fb_msg *out)
{
    if (frame->version != FB_PROTOCOL_VERSION) {
        return FB_ERR_VERSION;
    }
    if (!fb_msg_type_known(frame->type)) {
        return FB_ERR_TYPE;
    }
    out->type = frame->type;
    switch (frame->type) {
    case FB_MSG_INFO: return fb_decode_info(frame->body, frame->length, &out->u.info);
    case FB_MSG_ACTION: return fb_decode_action(frame->body, frame->length, &out->u.action);
    case FB_MSG_OBSERVATION: return fb_decode_observation(frame->body, frame->length, &out->u.observation);
    case FB_MSG_STATUS: return fb_decode_status(frame->body, frame->length, &out->u.status);
    case FB_MSG_FAULT: return fb_decode_fault(frame->body, frame->length, &out->u.fault);
    default: return frame->length == 0 ? FB_OK : FB_ERR_BODY; /* the empty bodies */
    }
}
