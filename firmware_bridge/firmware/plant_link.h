/*
 * plant_link.h - the HAL's sensors and actuators over a second serial line to a simulated plant
 * (docs/protocol.md section 12: `robopg robot-sim --plant-port`).
 *
 * Each HAL call is one request and its answer, waited for up to timeout_ms (the core's main loop waits with
 * it: keep it below the board watchdog's timeout). A lockstep plant's state changes only on RESET and STEP,
 * so read_sensors() takes the state their answers carried instead of asking again; a real-time plant is
 * sampled at every read. No allocation: the caller owns the plant_link.
 *
 *     static plant_link plant;
 *     plant_link_init(&plant, &io, 20);
 *     if (plant_link_hello(&plant, &config) == 0) {      (sizes, limits, period and LOCKSTEP from the plant)
 *         plant_link_hal(&plant, &hal, &board_hal);      (the plant's functions + the board's clock and link)
 *         fw_core_init(&core, &config, &hal, now);
 *     }
 */
#ifndef PLANT_LINK_H
#define PLANT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "fb_frame.h"
#include "fw_core.h"
#include "hal.h"

/* Message types of the plant line. */
#define PLANT_HELLO 0x41u
#define PLANT_INFO 0x42u
#define PLANT_RESET 0x43u
#define PLANT_ACTUATE 0x44u
#define PLANT_STEP 0x45u
#define PLANT_SENSE 0x46u
#define PLANT_STATE 0x47u

/* HAL failure codes, reported as FAULT(PLANT, detail = code). */
#define PLANT_ERR_TIMEOUT 1  /* no answer within timeout_ms */
#define PLANT_ERR_ANSWER 2   /* an answer of the wrong shape */

/* The plant line's bytes: the port's UART (or pty) and a way to wait for more. */
typedef struct plant_io {
    void *ctx;
    void (*write)(void *ctx, const uint8_t *data, size_t len); /* queue bytes (whole frames) */
    size_t (*read)(void *ctx, uint8_t *buf, size_t cap);       /* what has arrived; 0: nothing yet */
    uint32_t (*millis)(void *ctx);
    void (*idle)(void *ctx); /* wait a little for bytes: WFI on a board, poll() on a host */
} plant_io;

typedef struct plant_link {
    plant_io io;
    fw_hal board;         /* the port's clock and host link, which plant_link_hal() forwards */
    uint16_t timeout_ms;
    uint16_t seq;
    uint8_t obs_dim;
    uint8_t action_dim;
    uint8_t lockstep;
    uint8_t fresh;        /* sensors[] is the plant's current state (lockstep, after RESET or STEP) */
    uint8_t terminated;
    float sensors[FW_MAX_OBS];
    fb_rx rx;
    uint8_t body[2u + 4u * FW_MAX_ACTION];  /* the largest request: PLANT_ACTUATE */
    uint8_t wire[FB_COBS_MAX_ENCODED(FB_HEADER_SIZE + 2u + 4u * FW_MAX_ACTION + FB_CRC_SIZE) + 2u];
    uint32_t timeouts;
    uint32_t bad_answers;
} plant_link;

void plant_link_init(plant_link *p, const plant_io *io, uint16_t timeout_ms);

/* Ask the plant for its sizes, limits, period and mode and fill cfg's (firmware_id, watchdog and safe
 * action are the caller's). 0, or a PLANT_ERR_* code (the plant is not there yet: try again). */
int plant_link_hello(plant_link *p, fw_config *cfg);

/* The wire bytes of PLANT_ACTUATE(safe) into wire[0 .. cap-1] (0 if it does not fit), for a writer that
 * cannot wait for an answer: a watchdog's interrupt. Touches nothing in p but its sizes. */
size_t plant_link_safe_frame(const plant_link *p, const float *safe, uint8_t *wire, size_t cap);

/* hal = the plant's sensors, actuators, reset, step and terminated, and board's millis and serial_write. */
void plant_link_hal(plant_link *p, fw_hal *hal, const fw_hal *board);

#endif /* PLANT_LINK_H */
