/*
 * hal.h - what the firmware core needs from a board: a clock, sensors, actuators, a serial port.
 *
 * A port fills one fw_hal with its functions and passes it to fw_core_init(). Every function gets the
 * port's own ctx pointer back, so one binary can run several cores (the unit tests do) and nothing in
 * the core is global. The core calls these functions only from fw_core_feed(), fw_core_poll(),
 * fw_core_run() and fw_core_init(), i.e. from the caller's thread or main loop, never from an
 * interrupt; none of them may call back into the core.
 *
 * Return codes: 0 is success; any other value is a HAL failure code (1..255, truncated to u8). On a
 * failure the core writes the safe state, latches a fault and sends FAULT(PLANT, detail = the code).
 */
#ifndef FW_HAL_H
#define FW_HAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct fw_hal {
    void *ctx; /* handed back to every function below */

    /* Milliseconds since an arbitrary origin, wrapping at 2^32 (a free-running SysTick counter).
     * Used by fw_core_run(); fw_core_feed()/fw_core_poll() take the time as an argument instead. */
    uint32_t (*millis)(void *ctx);

    /* Sample the sensors into obs[0 .. obs_dim-1] (in sensor units, as the host's observation). */
    int (*read_sensors)(void *ctx, float *obs, uint8_t obs_dim);

    /* Command the actuators with an action already clipped to the limits; it holds until the next write. */
    int (*write_actuators)(void *ctx, const float *action, uint8_t action_dim);

    /* Put the actuators in their safe state (safe = the configured safe action, zeros by default,
     * clipped to the limits) and hold it. Must not fail: called on e-stop, watchdog and HAL faults. */
    void (*write_safe)(void *ctx, const float *safe, uint8_t action_dim);

    /* Capability CAN_RESET: start a new episode (e.g. a simulator resets its state, a robot homes).
     * May be NULL when CAN_RESET is not announced. */
    int (*plant_reset)(void *ctx);

    /* Capability LOCKSTEP: advance the plant by one control period under the last written command.
     * May be NULL when LOCKSTEP is not announced (real hardware runs in real time). */
    int (*plant_step)(void *ctx);

    /* Nonzero while the plant is in a terminal state (an end stop, a fall); flag TERMINATED.
     * Optional: NULL means never. */
    int (*terminated)(void *ctx);

    /* Queue len bytes (one or more whole wire frames) for the serial line. Must not block for longer
     * than the application tolerates; a frame that cannot be sent may be dropped (the host counts it). */
    void (*serial_write)(void *ctx, const uint8_t *data, size_t len);

    /* POLICY mode: the firmware runs the policy itself (robopg export --format c: robopg_policy()), mapping
     * the sensors' obs[0 .. obs_dim-1] to action[0 .. action_dim-1] in actuator units. NULL: the host sends
     * the actions. With a policy the firmware must not announce LOCKSTEP: from each RESET on it acts at every
     * control tick (a simulated plant, plant_step non-NULL, is stepped once per tick) and streams the
     * observations; the host supervises (RESET to start an episode, ESTOP to stop, the stream as telemetry). */
    void (*policy)(void *ctx, const float *obs, float *action);
} fw_hal;

#endif /* FW_HAL_H */
