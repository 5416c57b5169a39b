/* fb_frame.c - COBS, CRC-16, frames and the streaming receiver. See fb_frame.h. */
#include "fb_frame.h"

const char *fb_err_name(fb_err err)
{
    switch (err) {
    case FB_OK: return "ok";
    case FB_ERR_CRC: return "CrcError";
    case FB_ERR_MALFORMED_FRAME: return "MalformedFrame";
    case FB_ERR_VERSION: return "UnsupportedVersion";
    case FB_ERR_TYPE: return "UnknownMessageType";
    case FB_ERR_BODY: return "MalformedMessage";
    case FB_ERR_ARG: return "ArgumentError";
    }
    return "?";
}

/* ----- CRC ------------------------------------------------------------------------------------------ */

uint16_t fb_crc16_update(uint16_t crc, const uint8_t *data, size_t n)
{
    size_t i;
    int bit;
    for (i = 0; i < n; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; ++bit) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t fb_crc16(const uint8_t *data, size_t n)
{
    return fb_crc16_update((uint16_t)FB_CRC_INIT, data, n);
}

/* ----- COBS ----------------------------------------------------------------------------------------- */

/* Byte-at-a-time encoder, so a frame is encoded from header, body and CRC without a payload copy. */
typedef struct cobs_writer {
    uint8_t *dst;
    size_t cap;
    size_t pos;      /* next free byte */
    size_t code_pos; /* where the current block's code byte goes */
    uint8_t code;    /* 1 + data bytes in the current block */
    int full;        /* ran out of room */
} cobs_writer;

static void cw_start(cobs_writer *w, uint8_t *dst, size_t cap)
{
    w->dst = dst;
    w->cap = cap;
    w->full = cap == 0;
    w->code_pos = 0;
    w->pos = 1;
    w->code = 1;
}

static void cw_close_block(cobs_writer *w)
{
    if (!w->full) {
        w->dst[w->code_pos] = w->code;
    }
    w->code_pos = w->pos++;
    w->code = 1;
    if (w->code_pos >= w->cap) {
        w->full = 1;
    }
}

static void cw_put(cobs_writer *w, uint8_t b)
{
    if (b == 0) {
        cw_close_block(w);
        return;
    }
    if (w->pos >= w->cap) {
        w->full = 1;
    }
    if (!w->full) {
        w->dst[w->pos] = b;
    }
    w->pos++;
    if (++w->code == 0xFF) {
        /* A full block of 254 data bytes: code 0xFF, no implied zero. */
        cw_close_block(w);
    }
}

static void cw_put_all(cobs_writer *w, const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        cw_put(w, data[i]);
    }
}

/* Finish the last block; returns the encoded length or 0 if it did not fit. */
static size_t cw_finish(cobs_writer *w)
{
    if (w->full || w->code_pos >= w->cap) {
        return 0;
    }
    w->dst[w->code_pos] = w->code;
    return w->pos;
}

size_t fb_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    cobs_writer w;
    cw_start(&w, dst, cap);
    cw_put_all(&w, src, n);
    return cw_finish(&w);
}

fb_err fb_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_len)
{
    size_t i = 0, o = 0, end, k;
    uint8_t code;
    while (i < n) {
        code = src[i];
        end = i + code;
        if (code == 0 || end > n) {
            return FB_ERR_MALFORMED_FRAME;
        }
        for (k = i + 1; k < end; ++k) {
            if (src[k] == 0 || o >= cap) {
                return FB_ERR_MALFORMED_FRAME;
            }
            dst[o++] = src[k]; /* o <= k: safe when dst == src */
        }
        /* Every block but a full one and the last implies a zero. */
        if (code != 0xFF && end < n) {
            if (o >= cap) {
                return FB_ERR_MALFORMED_FRAME;
            }
            dst[o++] = 0;
        }
        i = end;
    }
    *out_len = o;
    return FB_OK;
}

/* ----- frames --------------------------------------------------------------------------------------- */

static void header(uint8_t out[FB_HEADER_SIZE], uint8_t version, uint8_t type, uint16_t seq, size_t length)
{
    out[0] = version;
    out[1] = type;
    out[2] = (uint8_t)(seq & 0xFFu);
    out[3] = (uint8_t)(seq >> 8);
    out[4] = (uint8_t)length;
}

size_t fb_frame_encode(uint8_t version, uint8_t type, uint16_t seq, const uint8_t *body, size_t length,
                       uint8_t *wire, size_t cap)
{
    uint8_t head[FB_HEADER_SIZE], crc_bytes[FB_CRC_SIZE];
    uint16_t crc;
    cobs_writer w;
    size_t n;
    if (length > FB_MAX_BODY || cap < 3) {
        return 0;
    }
    header(head, version, type, seq, length);
    crc = fb_crc16_update(fb_crc16(head, sizeof head), body, length);
    crc_bytes[0] = (uint8_t)(crc & 0xFFu);
    crc_bytes[1] = (uint8_t)(crc >> 8);
    wire[0] = 0;
    cw_start(&w, wire + 1, cap - 2);
    cw_put_all(&w, head, sizeof head);
    cw_put_all(&w, body, length);
    cw_put_all(&w, crc_bytes, sizeof crc_bytes);
    n = cw_finish(&w);
    if (n == 0) {
        return 0;
    }
    wire[n + 1] = 0;
    return n + 2;
}

size_t fb_payload_encode(uint8_t version, uint8_t type, uint16_t seq, const uint8_t *body, size_t length,
                         uint8_t *payload, size_t cap)
{
    size_t i, n = FB_HEADER_SIZE + length + FB_CRC_SIZE;
    uint16_t crc;
    if (length > FB_MAX_BODY || cap < n) {
        return 0;
    }
    header(payload, version, type, seq, length);
    for (i = 0; i < length; ++i) {
        payload[FB_HEADER_SIZE + i] = body[i];
    }
    crc = fb_crc16(payload, FB_HEADER_SIZE + length);
    payload[n - 2] = (uint8_t)(crc & 0xFFu);
    payload[n - 1] = (uint8_t)(crc >> 8);
    return n;
}

fb_err fb_payload_decode(const uint8_t *payload, size_t n, fb_frame *out)
{
    uint16_t crc;
    if (n < FB_MIN_PAYLOAD || n > FB_MAX_PAYLOAD) {
        return FB_ERR_MALFORMED_FRAME;
    }
    crc = (uint16_t)(payload[n - 2] | (payload[n - 1] << 8));
    if (fb_crc16(payload, n - FB_CRC_SIZE) != crc) {
        return FB_ERR_CRC;
    }
    /* Checked after the CRC: a mismatch here is a CRC-valid frame with a wrong layout, not noise. */
    if ((size_t)FB_HEADER_SIZE + payload[4] + FB_CRC_SIZE != n) {
        return FB_ERR_MALFORMED_FRAME;
    }
    out->version = payload[0];
    out->type = payload[1];
    out->seq = (uint16_t)(payload[2] | (payload[3] << 8));
    out->length = payload[4];
    out->body = payload + FB_HEADER_SIZE;
    return FB_OK;
}

fb_err fb_frame_decode_in_place(uint8_t *buf, size_t n, fb_frame *out)
{
    size_t len = 0;
    fb_err err;
    if (n > FB_MAX_ENCODED) {
        return FB_ERR_MALFORMED_FRAME;
    }
    err = fb_cobs_decode(buf, n, buf, n, &len);
    if (err != FB_OK) {
        return err;
    }
    return fb_payload_decode(buf, len, out);
}

/* ----- receiver ------------------------------------------------------------------------------------- */

void fb_rx_init(fb_rx *rx)
{
    rx->len = 0;
    rx->overflow = 0;
}

fb_rx_result fb_rx_push(fb_rx *rx, uint8_t byte, fb_frame *frame, fb_err *err)
{
    fb_err e;
    uint16_t n;
    if (byte != 0) {
        if (rx->overflow) {
            return FB_RX_NONE;
        }
        if (rx->len >= FB_MAX_ENCODED) {
            rx->len = 0;
            rx->overflow = 1;
            *err = FB_ERR_MALFORMED_FRAME;
            return FB_RX_ERROR;
        }
        rx->buf[rx->len++] = byte;
        return FB_RX_NONE;
    }
    /* A delimiter: end of whatever was pending. */
    if (rx->overflow) {
        rx->overflow = 0;
        return FB_RX_NONE;
    }
    n = rx->len;
    rx->len = 0;
    if (n == 0) {
        return FB_RX_NONE; /* back-to-back delimiters */
    }
    e = fb_frame_decode_in_place(rx->buf, n, frame);
    if (e != FB_OK) {
        *err = e;
        return FB_RX_ERROR;
    }
    return FB_RX_FRAME;
}
