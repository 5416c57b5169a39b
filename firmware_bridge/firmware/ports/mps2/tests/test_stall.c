/*
 * test_stall.c - the board watchdog on the target: a main loop that feeds it runs on, one that stalls is
 * caught by the NMI (which puts the "actuator" in its safe state), and a stall that lasts is ended by a
 * board reset. Prints each step on UART0; exits 0 through semihosting after the reset when all held.
 *
 * The actuator is a variable here; the firmware's on_stall writes its plant's safe action the same way.
 */
#include <stdint.h>
#include <stdio.h>

#include "../board.h"

#define TIMEOUT_MS 20u
#define RESET_MAGIC 0x57A11EDu

/* Survive the reset (link.ld's .noinit): what the first boot saw. */
__attribute__((section(".noinit"))) static uint32_t magic;
__attribute__((section(".noinit"))) static uint32_t stall_at_ms, safe_at_ms, stalls_seen;
__attribute__((section(".noinit"))) static volatile float actuator;

static void on_stall(void)
{
    actuator = 0.0f;
    if (safe_at_ms == 0) {
        safe_at_ms = board_millis();
    }
}

int main(int argc, char **argv)
{
    uint32_t start;
    (void)argc;
    (void)argv;
    if (magic == RESET_MAGIC) {
        magic = 0;
        printf("after reset: stalled at %lu ms, safe at %lu ms, actuator %d, stalls %lu\n",
               (unsigned long)stall_at_ms, (unsigned long)safe_at_ms, (int)actuator, (unsigned long)stalls_seen);
        return safe_at_ms > stall_at_ms && safe_at_ms <= stall_at_ms + TIMEOUT_MS + 1u && actuator == 0.0f &&
                       stalls_seen == 0
                   ? 0
                   : 1;
    }
    board_clock_start();
    safe_at_ms = 0;
    actuator = 0.75f;
    board_watchdog_start(TIMEOUT_MS, on_stall);
    start = board_millis();
    while (board_millis() - start < 10u * TIMEOUT_MS) {
        board_watchdog_feed(); /* a loop that runs: no NMI for ten timeouts */
    }
    stalls_seen = board_watchdog_stalls();
    printf("fed for %lu ms: %lu stalls; stalling\n", (unsigned long)(10u * TIMEOUT_MS), (unsigned long)stalls_seen);
    magic = RESET_MAGIC;
    stall_at_ms = board_millis();
    for (;;) { /* the stall: the NMI comes after TIMEOUT_MS, the reset one timeout later */
    }
}
