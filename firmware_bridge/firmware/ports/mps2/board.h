/*
 * board.h - the MPS2 AN385 board's clock and watchdog.
 *
 * board_clock_start(): a free-running 25 MHz counter (APB timer 0) behind board_millis() (wrapping at
 * 2^32, as hal.h asks), and SysTick interrupting at 1 kHz to wake the main loop.
 * board_watchdog_start(): the CMSDK watchdog, fed by the main loop once per iteration. When the loop stalls
 * for timeout_ms the watchdog raises the NMI, which calls on_stall (put the actuators in the safe state:
 * it preempts everything, so it may only touch what it owns); when the loop is still stalled one more
 * timeout later, the watchdog resets the board, and start-up writes the safe state again.
 */
#ifndef MPS2_BOARD_H
#define MPS2_BOARD_H

#include <stdint.h>

void board_clock_start(void);
uint32_t board_millis(void);

void board_watchdog_start(uint32_t timeout_ms, void (*on_stall)(void));
void board_watchdog_feed(void);
/* How many times the NMI has fired since start-up. */
uint32_t board_watchdog_stalls(void);

#endif /* MPS2_BOARD_H */
