/*
 * test_codec.c - the C codec against firmware_bridge/vectors/protocol_vectors.json.
 *
 *     test_codec path/to/protocol_vectors.json
 *
 * protocol.h's numbers equal the generated constants; CRC and COBS reproduce their vectors; every valid
 * frame is produced byte for byte from its fields and decoded back to them (floats bit for bit); every
 * invalid chunk is rejected with the class the vector names, and the receiver resyncs after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fb_frame.h"
#include "../fb_msg.h"
#include "../protocol.h"
#include "check.h"
#include "vec_json.h"

int check_failures = 0;
int check_count = 0;

#define BUF 2048

/* ----- helpers ----------------------------------------------------------------------------------------- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2, i;
    if (strlen(hex) % 2 != 0 || n > cap) {
        fprintf(stderr, "bad hex string (%lu chars)\n", (unsigned long)strlen(hex));
        exit(2);
    }
    for (i = 0; i < n; ++i) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            fprintf(stderr, "bad hex string\n");
            exit(2);
        }
        out[i] = (uint8_t)v;
    }
    return n;
}

static int same_bytes(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

static unsigned u(const jv_obj *v, const char *key)
{
    return (unsigned)jv_num(v, key);
}

static unsigned long ul(const jv_obj *v, const char *key)
{
    return (unsigned long)jv_num(v, key);
}

/* The floats of a JSON array (exact doubles of float32 values) as float32. */
static size_t floats(const jv_obj *v, const char *key, float *out, size_t cap)
{
    size_t n, i;
    const double *d = jv_nums(v, key, &n);
    if (n > cap) {
        fprintf(stderr, "%s: too many values\n", jv_str(v, "name"));
        exit(2);
    }
    for (i = 0; i < n; ++i) {
        out[i] = (float)d[i];
        if ((double)out[i] != d[i]) {
            fprintf(stderr, "%s: %s[%lu] is not a float32\n", jv_str(v, "name"), key, (unsigned long)i);
            exit(2);
        }
    }
    return n;
}

static int same_floats(const float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        if (fb_f32_bits(a[i]) != fb_f32_bits(b[i])) {
            return 0;
        }
    }
    return 1;
}

/* Feed bytes one at a time; returns the number of events and the first one's frame or error. */
static int feed_all(fb_rx *rx, const uint8_t *wire, size_t n, fb_rx_result *first, fb_frame *frame, fb_err *err,
                    uint8_t *body_copy, size_t *body_len)
{
    size_t i;
    int events = 0;
    for (i = 0; i < n; ++i) {
        fb_frame f;
        fb_err e = FB_OK;
        fb_rx_result r = fb_rx_push(rx, wire[i], &f, &e);
        if (r == FB_RX_NONE) {
            continue;
        }
        if (events++ == 0) {
            *first = r;
            *err = e;
            if (r == FB_RX_FRAME) {
                *frame = f;
                *body_len = f.length;
                memcpy(body_copy, f.body, f.length);
                frame->body = body_copy; /* the receiver's buffer changes with the next push */
            }
        }
    }
    return events;
}

/* ----- sections ----------------------------------------------------------------------------------------- */

typedef struct named {
    const char *name;
    unsigned long value;
} named;

static const named CONSTANTS[] = {
    {"PROTOCOL_VERSION", FB_PROTOCOL_VERSION},
    {"MSG_HELLO", FB_MSG_HELLO}, {"MSG_INFO", FB_MSG_INFO}, {"MSG_ACTION", FB_MSG_ACTION},
    {"MSG_OBSERVATION", FB_MSG_OBSERVATION}, {"MSG_HEARTBEAT", FB_MSG_HEARTBEAT}, {"MSG_STATUS", FB_MSG_STATUS},
    {"MSG_ESTOP", FB_MSG_ESTOP}, {"MSG_CLEAR", FB_MSG_CLEAR}, {"MSG_RESET", FB_MSG_RESET},
    {"MSG_FAULT", FB_MSG_FAULT},
    {"FLAG_ESTOP", FB_FLAG_ESTOP}, {"FLAG_FAULT", FB_FLAG_FAULT}, {"FLAG_CLIPPED", FB_FLAG_CLIPPED},
    {"FLAG_WATCHDOG_ARMED", FB_FLAG_WATCHDOG_ARMED}, {"FLAG_RESET", FB_FLAG_RESET},
    {"FLAG_TERMINATED", FB_FLAG_TERMINATED},
    {"FAULT_WATCHDOG", FB_FAULT_WATCHDOG}, {"FAULT_LATCHED", FB_FAULT_LATCHED},
    {"FAULT_UNSUPPORTED_VERSION", FB_FAULT_UNSUPPORTED_VERSION}, {"FAULT_BAD_TYPE", FB_FAULT_BAD_TYPE},
    {"FAULT_BAD_LENGTH", FB_FAULT_BAD_LENGTH}, {"FAULT_BAD_VALUE", FB_FAULT_BAD_VALUE},
    {"FAULT_RESET_UNSUPPORTED", FB_FAULT_RESET_UNSUPPORTED}, {"FAULT_PLANT", FB_FAULT_PLANT},
    {"CAP_CAN_RESET", FB_CAP_CAN_RESET}, {"CAP_LOCKSTEP", FB_CAP_LOCKSTEP},
    {"HEADER_SIZE", FB_HEADER_SIZE}, {"CRC_SIZE", FB_CRC_SIZE}, {"MAX_BODY", FB_MAX_BODY},
    {"MIN_PAYLOAD", FB_MIN_PAYLOAD}, {"MAX_PAYLOAD", FB_MAX_PAYLOAD}, {"MAX_ENCODED", FB_MAX_ENCODED},
    {"MAX_OBS_DIM", FB_MAX_OBS_DIM}, {"MAX_ACTION_DIM", FB_MAX_ACTION_DIM},
    {"MAX_FIRMWARE_ID", FB_MAX_FIRMWARE_ID}, {"CRC_CHECK", FB_CRC_CHECK},
};

static void test_constants(const jv_obj *doc)
{
    size_t n, i, k, count = sizeof CONSTANTS / sizeof CONSTANTS[0];
    const jv_obj *rows = jv_rows(doc, "constants", &n);
    CHECK_EQ_U(n, count);
    for (i = 0; i < n; ++i) {
        const char *name = jv_str(&rows[i], "name");
        int found = 0;
        for (k = 0; k < count; ++k) {
            if (strcmp(CONSTANTS[k].name, name) == 0) {
                found = 1;
                CHECK_MSG(CONSTANTS[k].value == ul(&rows[i], "value"), "protocol.h %s = %lu, codes.py says %lu",
                          name, CONSTANTS[k].value, ul(&rows[i], "value"));
            }
        }
        CHECK_MSG(found, "constant %s is not in protocol.h", name);
    }
    CHECK_EQ_U(jv_num(doc, "protocol_version"), FB_PROTOCOL_VERSION);
}

static void test_crc(const jv_obj *doc)
{
    size_t n, i;
    const jv_obj *rows = jv_rows(doc, "crc", &n);
    CHECK(n > 0);
    for (i = 0; i < n; ++i) {
        uint8_t data[BUF];
        size_t len = unhex(jv_str(&rows[i], "data_hex"), data, sizeof data);
        CHECK_MSG(fb_crc16(data, len) == u(&rows[i], "crc"), "%s", jv_str(&rows[i], "name"));
    }
}

static void test_cobs(const jv_obj *doc)
{
    size_t n, i;
    const jv_obj *rows = jv_rows(doc, "cobs", &n);
    CHECK(n > 0);
    for (i = 0; i < n; ++i) {
        const char *name = jv_str(&rows[i], "name");
        uint8_t dec[BUF], enc[BUF], out[BUF];
        size_t nd = unhex(jv_str(&rows[i], "decoded_hex"), dec, sizeof dec);
        size_t ne = unhex(jv_str(&rows[i], "encoded_hex"), enc, sizeof enc);
        size_t got, len = 0;
        got = fb_cobs_encode(dec, nd, out, sizeof out);
        CHECK_MSG(same_bytes(out, got, enc, ne), "encode %s", name);
        CHECK_MSG(got <= FB_COBS_MAX_ENCODED(nd), "%s exceeds the worst case", name);
        CHECK_MSG(fb_cobs_encode(dec, nd, out, ne) == ne, "encode %s into exactly its size", name);
        CHECK_MSG(fb_cobs_encode(dec, nd, out, ne - 1) == 0, "encode %s into one byte less", name);
        CHECK_MSG(fb_cobs_decode(enc, ne, out, sizeof out, &len) == FB_OK && same_bytes(out, len, dec, nd),
                  "decode %s", name);
        memcpy(out, enc, ne);
        CHECK_MSG(fb_cobs_decode(out, ne, out, ne, &len) == FB_OK && same_bytes(out, len, dec, nd),
                  "decode %s in place", name);
    }
    rows = jv_rows(doc, "cobs_invalid", &n);
    CHECK(n > 0);
    for (i = 0; i < n; ++i) {
        uint8_t enc[BUF], out[BUF];
        size_t ne = unhex(jv_str(&rows[i], "encoded_hex"), enc, sizeof enc), len = 0;
        CHECK_MSG(fb_cobs_decode(enc, ne, out, sizeof out, &len) == FB_ERR_MALFORMED_FRAME, "%s",
                  jv_str(&rows[i], "name"));
        CHECK(strcmp(jv_str(&rows[i], "error"), "MalformedFrame") == 0);
    }
}

/* The message a "frames" vector describes. */
/* The fields OBSERVATION and STATUS both start with: the request answered, firmware time, flags. */
static void read_answer_head(const jv_obj *v, uint16_t *ack_seq, uint32_t *t_ms, uint16_t *flags)
{
    *ack_seq = (uint16_t)u(v, "ack_seq");
    *t_ms = (uint32_t)ul(v, "t_ms");
    *flags = (uint16_t)u(v, "flags");
}

static void message_of(const jv_obj *v, fb_msg *m)
{
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)u(v, "type");
    switch (m->type) {
    case FB_MSG_INFO: {
        fb_info *i = &m->u.info;
        const char *id = jv_str(v, "firmware_id");
        i->ack_seq = (uint16_t)u(v, "ack_seq");
        i->obs_dim = (uint8_t)u(v, "obs_dim");
        i->action_dim = (uint8_t)u(v, "action_dim");
        i->capabilities = (uint8_t)u(v, "capabilities");
        i->control_period_us = (uint32_t)ul(v, "control_period_us");
        i->watchdog_ms = (uint16_t)u(v, "watchdog_ms");
        CHECK(floats(v, "action_low", i->action_low, FB_MAX_ACTION_DIM) == i->action_dim);
        CHECK(floats(v, "action_high", i->action_high, FB_MAX_ACTION_DIM) == i->action_dim);
        i->id_len = (uint8_t)strlen(id);
        memcpy(i->firmware_id, id, i->id_len + 1u);
        break;
    }
    case FB_MSG_ACTION:
        m->u.action.count = (uint8_t)floats(v, "values", m->u.action.values, FB_MAX_ACTION_DIM);
        break;
    case FB_MSG_OBSERVATION:
        read_answer_head(v, &m->u.observation.ack_seq, &m->u.observation.t_ms, &m->u.observation.flags);
        m->u.observation.count = (uint8_t)floats(v, "values", m->u.observation.values, FB_MAX_OBS_DIM);
        break;
    case FB_MSG_STATUS:
        read_answer_head(v, &m->u.status.ack_seq, &m->u.status.t_ms, &m->u.status.flags);
        break;
    case FB_MSG_FAULT:
        m->u.fault.reason = (uint8_t)u(v, "reason");
        m->u.fault.detail = (uint8_t)u(v, "detail");
        m->u.fault.ref_seq = (uint16_t)u(v, "ref_seq");
        m->u.fault.t_ms = (uint32_t)ul(v, "t_ms");
        m->u.fault.flags = (uint16_t)u(v, "flags");
        break;
    default:
        break;
    }
}

static int same_message(const fb_msg *a, const fb_msg *b)
{
    if (a->type != b->type) return 0;
    switch (a->type) {
    case FB_MSG_INFO: {
        const fb_info *x = &a->u.info, *y = &b->u.info;
        return x->ack_seq == y->ack_seq && x->obs_dim == y->obs_dim && x->action_dim == y->action_dim &&
               x->capabilities == y->capabilities && x->control_period_us == y->control_period_us &&
               x->watchdog_ms == y->watchdog_ms && same_floats(x->action_low, y->action_low, x->action_dim) &&
               same_floats(x->action_high, y->action_high, x->action_dim) && x->id_len == y->id_len &&
               strcmp(x->firmware_id, y->firmware_id) == 0;
    }
    case FB_MSG_ACTION:
        return a->u.action.count == b->u.action.count &&
               same_floats(a->u.action.values, b->u.action.values, a->u.action.count);
    case FB_MSG_OBSERVATION: {
        const fb_observation *x = &a->u.observation, *y = &b->u.observation;
        return x->ack_seq == y->ack_seq && x->t_ms == y->t_ms && x->flags == y->flags && x->count == y->count &&
               same_floats(x->values, y->values, x->count);
    }
    case FB_MSG_STATUS:
        return a->u.status.ack_seq == b->u.status.ack_seq && a->u.status.t_ms == b->u.status.t_ms &&
               a->u.status.flags == b->u.status.flags;
    case FB_MSG_FAULT:
        return a->u.fault.reason == b->u.fault.reason && a->u.fault.detail == b->u.fault.detail &&
               a->u.fault.ref_seq == b->u.fault.ref_seq &&
               a->u.fault.t_ms == b->u.fault.t_ms && a->u.fault.flags == b->u.fault.flags;
    default:
        return 1;
    }
}

/* One row of "frames" or "framing": the header fields and the frame's bytes at each stage. */
typedef struct frame_row {
    const char *name;
    uint8_t version, type;
    uint16_t seq;
    uint8_t body[BUF], payload[BUF], wire[BUF];
    size_t nb, np, nw;
    uint8_t rx_body[BUF]; /* the received frame's body */
} frame_row;

/* Read row v, check that the encoder writes its payload and wire bytes and that the streaming receiver
 * gives its frame back; returns 1 with that frame in f, 0 if none came. */
static int check_frame_row(const jv_obj *v, frame_row *r, fb_frame *f)
{
    uint8_t out[BUF];
    size_t got, rx_len = 0;
    fb_rx rx;
    fb_err e = FB_OK;
    fb_rx_result first = FB_RX_NONE;
    int events;

    r->name = jv_str(v, "name");
    r->nb = unhex(jv_str(v, "body_hex"), r->body, sizeof r->body);
    r->np = unhex(jv_str(v, "payload_hex"), r->payload, sizeof r->payload);
    r->nw = unhex(jv_str(v, "wire_hex"), r->wire, sizeof r->wire);
    r->version = (uint8_t)u(v, "version");
    r->type = (uint8_t)u(v, "type");
    r->seq = (uint16_t)u(v, "seq");

    got = fb_payload_encode(r->version, r->type, r->seq, r->body, r->nb, out, sizeof out);
    CHECK_MSG(same_bytes(out, got, r->payload, r->np), "payload of %s", r->name);
    got = fb_frame_encode(r->version, r->type, r->seq, r->body, r->nb, out, sizeof out);
    CHECK_MSG(same_bytes(out, got, r->wire, r->nw), "wire of %s", r->name);

    fb_rx_init(&rx);
    events = feed_all(&rx, r->wire, r->nw, &first, f, &e, r->rx_body, &rx_len);
    CHECK_MSG(events == 1 && first == FB_RX_FRAME, "receive %s (%d events, err %s)", r->name, events,
              fb_err_name(e));
    if (events != 1 || first != FB_RX_FRAME) return 0;
    CHECK(f->version == r->version && f->type == r->type && f->seq == r->seq &&
          same_bytes(f->body, f->length, r->body, r->nb));
    return 1;
}

static void test_frames(const jv_obj *doc)
{
    size_t n, i;
    const jv_obj *rows = jv_rows(doc, "frames", &n);
    unsigned types_seen = 0;
    frame_row r;
    CHECK(n > 0);
    for (i = 0; i < n; ++i) {
        uint8_t out[BUF];
        fb_msg m, d;
        fb_frame f;
        int len, received = check_frame_row(&rows[i], &r, &f);
        size_t nb = r.nb, nw = r.nw;

        types_seen |= 1u << r.type;
        /* fields -> bytes */
        message_of(&rows[i], &m);
        len = fb_encode_body(&m, out, sizeof out);
        CHECK_MSG(len >= 0 && same_bytes(out, (size_t)len, r.body, nb), "encode body of %s", r.name);
        CHECK_MSG(fb_frame_encode(r.version, r.type, r.seq, r.body, nb, out, nw) == nw, "%s into exactly its size",
                  r.name);
        CHECK_MSG(fb_frame_encode(r.version, r.type, r.seq, r.body, nb, out, nw - 1) == 0, "%s into one byte less",
                  r.name);
        CHECK_MSG(fb_encode_body(&m, out, nb == 0 ? 0 : nb - 1) == (nb == 0 ? 0 : -1), "%s body cap", r.name);

        /* bytes -> fields */
        if (!received) continue;
        CHECK_MSG(fb_payload_decode(r.payload, r.np, &f) == FB_OK, "payload decode %s", r.name);
        memset(&d, 0xA5, sizeof d);
        CHECK_MSG(fb_decode_message(&f, &d) == FB_OK, "decode %s", r.name);
        CHECK_MSG(same_message(&d, &m), "decoded fields of %s", r.name);
        len = fb_encode_body(&d, out, sizeof out);
        CHECK_MSG(len >= 0 && same_bytes(out, (size_t)len, r.body, nb), "re-encode %s", r.name);
    }
    CHECK_MSG(types_seen == 0x7FEu, "message types covered: 0x%x", types_seen);
}

static void test_framing(const jv_obj *doc)
{
    size_t n, i;
    const jv_obj *rows = jv_rows(doc, "framing", &n);
    frame_row r;
    CHECK(n > 0);
    for (i = 0; i < n; ++i) {
        fb_frame f;
        check_frame_row(&rows[i], &r, &f);
        CHECK_MSG(r.nw <= FB_MAX_WIRE, "%s longer than FB_MAX_WIRE", r.name);
    }
    {
        uint8_t out[BUF], body[FB_MAX_BODY + 1] = {0};
        CHECK(fb_frame_encode(1, 1, 0, body, FB_MAX_BODY + 1, out, sizeof out) == 0);
        CHECK(fb_frame_encode(1, 1, 0, body, FB_MAX_BODY, out, FB_MAX_WIRE) > 0);
    }
}

static fb_err class_of(const char *name)
{
    int e;
    for (e = FB_OK; e <= FB_ERR_ARG; ++e) {
        if (strcmp(fb_err_name((fb_err)e), name) == 0) {
            return (fb_err)e;
        }
    }
    fprintf(stderr, "unknown error class %s\n", name);
    exit(2);
}

static void test_invalid(const jv_obj *doc)
{
    size_t n, i;
    const jv_obj *rows = jv_rows(doc, "invalid", &n);
    static const uint8_t hello[] = {0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x03, 0xe9, 0xcd, 0x00}; /* seq 0 */
    CHECK(n > 0);
    for (i = 0; i < n; ++i) {
        const jv_obj *v = &rows[i];
        const char *name = jv_str(v, "name");
        fb_err expected = class_of(jv_str(v, "error")), got = FB_OK;
        uint8_t wire[BUF], rx_body[BUF];
        size_t nw = unhex(jv_str(v, "wire_hex"), wire, sizeof wire), rx_len = 0;
        fb_rx rx;
        fb_frame f;
        fb_msg m;
        fb_err e = FB_OK;
        fb_rx_result first = FB_RX_NONE;
        int events;
        fb_rx_init(&rx);
        events = feed_all(&rx, wire, nw, &first, &f, &e, rx_body, &rx_len);
        CHECK_MSG(events == 1, "%s: %d events", name, events);
        if (first == FB_RX_ERROR) {
            got = e;
        } else if (first == FB_RX_FRAME) {
            got = fb_decode_message(&f, &m);
        }
        CHECK_MSG(got == expected, "%s: rejected as %s, expected %s", name, fb_err_name(got), fb_err_name(expected));
        /* The next frame survives whatever came before. */
        events = feed_all(&rx, hello, sizeof hello, &first, &f, &e, rx_body, &rx_len);
        CHECK_MSG(events == 1 && first == FB_RX_FRAME && f.type == FB_MSG_HELLO, "resync after %s", name);
    }
}

/* Noise never overflows and never costs the next frame (run under ASan/UBSan). */
static void test_noise(void)
{
    static const uint8_t hello[] = {0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x03, 0xe9, 0xcd, 0x00};
    uint32_t state = 12345u;
    fb_rx rx;
    int round, frames = 0;
    fb_rx_init(&rx);
    for (round = 0; round < 2000; ++round) {
        int len = (int)(state % 700u), k;
        fb_frame f;
        fb_err e;
        for (k = 0; k < len; ++k) {
            state = state * 1103515245u + 12345u;
            (void)fb_rx_push(&rx, (uint8_t)((state >> 16) % 7u == 0 ? 0 : (state >> 8)), &f, &e);
        }
        for (k = 0; k < (int)sizeof hello; ++k) {
            if (fb_rx_push(&rx, hello[k], &f, &e) == FB_RX_FRAME && f.type == FB_MSG_HELLO && f.seq == 0) {
                ++frames;
            }
        }
        state = state * 1103515245u + 12345u;
    }
    CHECK_EQ_U(frames, 2000);
}

int main(int argc, char **argv)
{
    jv_obj doc;
    char err[256];
    if (argc != 2) {
        fprintf(stderr, "usage: %s protocol_vectors.json\n", argv[0]);
        return 2;
    }
    if (jv_load(argv[1], &doc, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    CHECK(strcmp(jv_str(&doc, "format"), "robopg-protocol-vectors") == 0);
    test_constants(&doc);
    test_crc(&doc);
    test_cobs(&doc);
    test_frames(&doc);
    test_framing(&doc);
    test_invalid(&doc);
    test_noise();
    jv_free(&doc);
    printf("test_codec: %d checks, %d failed\n", check_count, check_failures);
    return check_failures == 0 ? 0 : 1;
}
