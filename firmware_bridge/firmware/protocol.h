/*
 * protocol.h - the serial protocol's numbers for C (protocol version 1).
 *
 * firmware_bridge/codes.py is the other copy of these values (and framing.py / messages.py of the
 * sizes); the two must agree. The C unit tests check every value here against the "constants" section
 * of firmware_bridge/vectors/protocol_vectors.json, which is generated from the Python modules.
 *
 * Payload (before COBS), little-endian:
 *     0  version  u8
 *     1  type     u8
 *     2  seq      u16
 *     4  length   u8      body length
 *     5  body     length bytes
 *     5+length    crc u16 CRC-16/CCITT-FALSE of bytes 0 .. 4+length
 * On the wire a frame is 00 cobs(payload) 00.
 */
#ifndef FB_PROTOCOL_H
#define FB_PROTOCOL_H

#define FB_PROTOCOL_VERSION 1u

/* Message types */
#define FB_MSG_HELLO       0x01u /* host -> firmware: open a session, ask for INFO */
#define FB_MSG_INFO        0x02u /* firmware -> host: sizes, limits, timing, firmware id */
#define FB_MSG_ACTION      0x03u /* host -> firmware: actuator command */
#define FB_MSG_OBSERVATION 0x04u /* firmware -> host: sensor values, timestamp, status flags */
#define FB_MSG_HEARTBEAT   0x05u /* host -> firmware: liveness probe */
#define FB_MSG_STATUS      0x06u /* firmware -> host: answer to HEARTBEAT, ESTOP and CLEAR */
#define FB_MSG_ESTOP       0x07u /* host -> firmware: engage the e-stop latch */
#define FB_MSG_CLEAR       0x08u /* host -> firmware: release the e-stop and fault latches */
#define FB_MSG_RESET       0x09u /* host -> firmware: start a new episode */
#define FB_MSG_FAULT       0x0Au /* firmware -> host: a refused frame or a fault event */

/* Status flags (OBSERVATION, STATUS, FAULT) */
#define FB_FLAG_ESTOP          0x0001u /* e-stop latch engaged: actuators safe until CLEAR */
#define FB_FLAG_FAULT          0x0002u /* fault latch engaged (e.g. watchdog): actuators safe until CLEAR */
#define FB_FLAG_CLIPPED        0x0004u /* the last applied action was clipped to the action limits */
#define FB_FLAG_WATCHDOG_ARMED 0x0008u /* an ACTION has been applied and the watchdog is counting */
#define FB_FLAG_RESET          0x0010u /* first observation of an episode (answer to RESET) */
#define FB_FLAG_TERMINATED     0x0020u /* the plant reached a terminal state; RESET to go on */

/* Fault reasons. WATCHDOG and PLANT are events; the others refuse the frame ref_seq. */
#define FB_FAULT_WATCHDOG            0x01u /* no valid ACTION within the watchdog timeout */
#define FB_FAULT_LATCHED             0x02u /* command refused: e-stop or fault latch engaged */
#define FB_FAULT_UNSUPPORTED_VERSION 0x03u /* detail: the version the firmware speaks */
#define FB_FAULT_BAD_TYPE            0x04u /* detail: the unknown (or wrong-direction) type code */
#define FB_FAULT_BAD_LENGTH          0x05u /* body does not fit the type; ACTION: detail = action_dim */
#define FB_FAULT_BAD_VALUE           0x06u /* non-finite action component; detail: its index */
#define FB_FAULT_RESET_UNSUPPORTED   0x07u /* this robot cannot start a new episode by itself */
#define FB_FAULT_PLANT               0x08u /* sensor or actuator failure; detail: HAL code */

/* Capabilities (INFO) */
#define FB_CAP_CAN_RESET 0x01u /* RESET starts a new episode */
#define FB_CAP_LOCKSTEP  0x02u /* the plant advances one control period per ACTION (a simulator) */

/* Sizes */
#define FB_HEADER_SIZE     5u
#define FB_CRC_SIZE        2u
#define FB_MAX_BODY        255u
#define FB_MIN_PAYLOAD     (FB_HEADER_SIZE + FB_CRC_SIZE)               /* 7 */
#define FB_MAX_PAYLOAD     (FB_HEADER_SIZE + FB_MAX_BODY + FB_CRC_SIZE) /* 262 */
/* Worst-case COBS size: one code byte per started 254-byte block. */
#define FB_COBS_MAX_ENCODED(n) ((n) + 1u + (n) / 254u)
#define FB_MAX_ENCODED     FB_COBS_MAX_ENCODED(FB_MAX_PAYLOAD)           /* 264 */
#define FB_MAX_WIRE        (FB_MAX_ENCODED + 2u)                         /* with both delimiters */
#define FB_MAX_OBS_DIM     32u
#define FB_MAX_ACTION_DIM  16u
#define FB_MAX_FIRMWARE_ID 32u
#define FB_CRC_CHECK       0x29B1u /* CRC-16/CCITT-FALSE of "123456789" */

/* Fixed body sizes */
#define FB_INFO_HEAD_SIZE        11u /* ack_seq u16, obs_dim u8, action_dim u8, caps u8, period_us u32, wd_ms u16 */
#define FB_OBSERVATION_HEAD_SIZE 9u  /* ack_seq u16, t_ms u32, flags u16, count u8 */
#define FB_STATUS_SIZE           8u  /* ack_seq u16, t_ms u32, flags u16 */
#define FB_FAULT_SIZE            10u /* reason u8, detail u8, ref_seq u16, t_ms u32, flags u16 */

#endif /* FB_PROTOCOL_H */
