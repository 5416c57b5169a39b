/*
 * fw_core.h - the firmware's protocol state machine (protocol version 1).
 *
 * Implements the normative firmware behaviour: HELLO -> INFO; HEARTBEAT/ESTOP/CLEAR -> STATUS;
 * ACTION clipped to the limits and applied (lockstep: the plant advances one period and OBSERVATION
 * answers; real time: one OBSERVATION streams per control period); RESET -> first OBSERVATION of an
 * episode; an action watchdog on the wall clock; e-stop and fault latches; FAULT for every refused frame.
 * Frames that fail COBS, CRC or the length field are dropped silently and counted.
 *
 * No dynamic allocation: the caller owns the fw_core (static storage on a microcontroller) and the
 * fw_config; the core keeps pointers to both and to the fw_hal, which must outlive it.
 *
 * Use:
 *     static fw_core core;
 *     fw_core_init(&core, &config, &hal, hal.millis(hal.ctx));
 *     for (;;) { n = read_uart(buf); fw_core_run(&core, buf, n); }     (or feed()/poll() with a time)
 * fw_core_ms_until_due() says how long the loop may sleep when no byte arrives.
 */
#ifndef FW_CORE_H
#define FW_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "fb_frame.h"
#include "fb_msg.h"
#include "hal.h"
#include "protocol.h"

/* Capacity of the core's buffers; a port may lower these (-DFW_MAX_OBS=4 -DFW_MAX_ACTION=2) to save
 * RAM. The protocol maxima are the defaults. */
#ifndef FW_MAX_OBS
#define FW_MAX_OBS FB_MAX_OBS_DIM
#endif
#ifndef FW_MAX_ACTION
#define FW_MAX_ACTION FB_MAX_ACTION_DIM
#endif

/* The largest body the firmware sends (INFO or OBSERVATION) and its wire size. */
#define FW_INFO_BODY_MAX (FB_INFO_HEAD_SIZE + 8u * FW_MAX_ACTION + 1u + FB_MAX_FIRMWARE_ID)
#define FW_OBS_BODY_MAX (FB_OBSERVATION_HEAD_SIZE + 4u * FW_MAX_OBS)
#define FW_TX_BODY_MAX (FW_INFO_BODY_MAX > FW_OBS_BODY_MAX ? FW_INFO_BODY_MAX : FW_OBS_BODY_MAX)
#define FW_TX_WIRE_MAX (FB_COBS_MAX_ENCODED(FB_HEADER_SIZE + FW_TX_BODY_MAX + FB_CRC_SIZE) + 2u)

/* What the firmware announces in INFO and enforces. Can be a static const (flash). */
typedef struct fw_config {
    uint8_t obs_dim;            /* 1 .. FW_MAX_OBS */
    uint8_t action_dim;         /* 1 .. FW_MAX_ACTION */
    uint8_t capabilities;       /* FB_CAP_CAN_RESET | FB_CAP_LOCKSTEP */
    uint32_t control_period_us; /* > 0; real time: the OBSERVATION stream period (>= 1000 us, ms clock) */
    uint16_t watchdog_ms;       /* 0: no watchdog */
    float action_low[FW_MAX_ACTION];
    float action_high[FW_MAX_ACTION];
    uint8_t has_safe_action;    /* 0: the safe action is zeros (clipped to the limits) */
    float safe_action[FW_MAX_ACTION];
    const char *firmware_id;    /* printable ASCII, at most FB_MAX_FIRMWARE_ID characters */
} fw_config;

/* What the core has seen. */
typedef struct fw_stats {
    uint32_t frames_received; /* frames that passed framing checks */
    uint32_t frames_sent;
    uint32_t crc_errors;        /* dropped silently */
    uint32_t malformed_frames;  /* invalid COBS, bad size or length field, overlong chunk: dropped */
    uint32_t rejected_messages; /* answered with FAULT UNSUPPORTED_VERSION, BAD_TYPE or BAD_LENGTH */
    uint32_t refused_commands;  /* answered with FAULT LATCHED, BAD_VALUE, RESET_UNSUPPORTED, BAD_LENGTH */
    uint32_t watchdog_trips;
    uint32_t plant_faults;
    uint32_t resends;           /* ACTION or RESET received again (same seq): answered, not applied again */
    uint32_t tx_errors;         /* frames that could not be encoded (a bug if nonzero) */
} fw_stats;

typedef struct fw_core {
    const fw_config *cfg;
    const fw_hal *hal;
    fb_rx rx;
    uint16_t tx_seq;          /* this side's sequence number: +1 per frame sent, wrapping */
    uint16_t last_action_seq; /* the last applied ACTION: ref_seq of a WATCHDOG fault */
    uint16_t ack_seq;         /* the last applied ACTION or RESET: what a streamed OBSERVATION answers */
    uint8_t last_cmd_type;    /* that command's type since the last HELLO (0: none): a resend is told by */
    uint16_t last_cmd_seq;    /* its type and seq, and not applied again */
    uint8_t estop;            /* e-stop latch */
    uint8_t fault;            /* fault latch (watchdog, plant) */
    uint8_t clipped;          /* the last applied action was clipped */
    uint8_t episode_start;    /* RESET answered, no ACTION applied since */
    uint8_t wd_armed;
    uint8_t policy_running;   /* POLICY mode: an episode runs (from RESET until a latch or a terminal state) */
    uint32_t wd_deadline_ms;  /* trips when now > deadline */
    uint32_t next_tick_ms;    /* real time: when the next OBSERVATION streams */
    uint16_t tick_frac_us;    /* sub-millisecond remainder of the tick schedule */
    float safe[FW_MAX_ACTION];
    float applied[FW_MAX_ACTION];
    float obs[FW_MAX_OBS];
    uint8_t body[FW_TX_BODY_MAX];
    uint8_t wire[FW_TX_WIRE_MAX];
    fw_stats stats;
} fw_core;

/* FAULT(PLANT) detail when a POLICY-mode policy returns a NaN or infinite action. */
#define FW_POLICY_FAULT 255u

/* Result of fw_core_init. */
typedef enum fw_init_result {
    FW_INIT_OK = 0,
    FW_INIT_BAD_SIZES = -1,  /* obs_dim or action_dim 0 or above the capacity */
    FW_INIT_BAD_LIMITS = -2, /* non-finite limits or low > high, non-finite safe action */
    FW_INIT_BAD_TIMING = -3, /* control_period_us 0 */
    FW_INIT_BAD_ID = -4,     /* firmware id missing, too long or not printable ASCII */
    FW_INIT_BAD_HAL = -5     /* a required HAL function is NULL (plant_reset for CAN_RESET, ...), or a policy
                                with LOCKSTEP */
} fw_init_result;

/* Check the configuration and HAL, reset every state, write the safe state. now_ms starts the real-time
 * OBSERVATION schedule. */
fw_init_result fw_core_init(fw_core *core, const fw_config *cfg, const fw_hal *hal, uint32_t now_ms);

/* Received bytes, at time now_ms. Answers are written through hal->serial_write before this returns. */
void fw_core_feed(fw_core *core, const uint8_t *data, size_t n, uint32_t now_ms);

/* The timed rules at now_ms: the watchdog and, in real time, the streamed OBSERVATION. Call at least once
 * per millisecond, or when fw_core_ms_until_due() says. */
void fw_core_poll(fw_core *core, uint32_t now_ms);

/* fw_core_feed() then fw_core_poll() at hal->millis(). */
void fw_core_run(fw_core *core, const uint8_t *data, size_t n);

/* Milliseconds until fw_core_poll() has something to do (0: now); UINT32_MAX: nothing scheduled. */
uint32_t fw_core_ms_until_due(const fw_core *core, uint32_t now_ms);

/* Status flags (FB_FLAG_*) as the next OBSERVATION, STATUS or FAULT would carry them. */
uint16_t fw_core_flags(const fw_core *core);

#endif /* FW_CORE_H */
