/*
 * main.c - the reference firmware on the MPS2 board (AN385: Cortex-M3, AN386: Cortex-M4F), e.g. under
 * `qemu-system-arm -M mps2-an385 -kernel robopg-fw.elf -serial pty -serial pty`.
 *
 * UART0 is the host link, UART1 the plant line (docs/protocol.md section 12: a simulated plant, `robopg
 * robot-sim --plant-port`), both interrupt-driven with ring buffers. At start-up the firmware asks the
 * plant for its sizes, limits, period and mode until it answers, then serves the host: firmware id
 * "robopg-ref-mps2", protocol watchdog 200 ms. The main loop feeds the board watchdog; when it stalls for
 * BOARD_WATCHDOG_MS the NMI sends the plant the safe action, and the board resets if the stall lasts twice
 * that.
 *
 * Built with -DFW_POLICY and a policy from `robopg export --format c` (make port-policy POLICY=DIR), it is the
 * POLICY-mode firmware "robopg-ref-mps2-policy" (hal.h): from each RESET it runs the policy at every control
 * tick, stepping the simulated plant once per tick, and the host only supervises.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../fw_core.h"
#include "../../plant_link.h"
#include "board.h"
#include "uart.h"

#ifdef FW_POLICY
#include "../../fw_policy.h"
#define FIRMWARE_ID "robopg-ref-mps2-policy"
#else
#define FIRMWARE_ID "robopg-ref-mps2"
#endif
#define BAUD 115200u
#define WATCHDOG_MS 200u
#define PLANT_TIMEOUT_MS 1000u /* per plant request: a simulated plant on a busy computer can be slow */
#define BOARD_WATCHDOG_MS 150u

static uart_port host_uart, plant_uart;
static plant_link plant;
static fw_config config;
static fw_hal hal;
static fw_core core;

void uart0_rx_handler(void)
{
    uart_rx_isr(&host_uart);
}

void uart0_tx_handler(void)
{
    uart_tx_isr(&host_uart);
}

void uart1_rx_handler(void)
{
    uart_rx_isr(&plant_uart);
}

void uart1_tx_handler(void)
{
    uart_tx_isr(&plant_uart);
}

/* ----- the board's part of the HAL, and the plant line's bytes ---------------------------------------------- */

static uint32_t board_clock(void *ctx)
{
    (void)ctx;
    return board_millis();
}

static void host_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)uart_write(&host_uart, data, len);
}

static void plant_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)uart_write(&plant_uart, data, len); /* a dropped request times out: FAULT(PLANT) */
}

static size_t plant_read(void *ctx, uint8_t *buf, size_t cap)
{
    (void)ctx;
    return uart_read(&plant_uart, buf, cap);
}

/* Waiting for the plant is not a stall: the wait is bounded by PLANT_TIMEOUT_MS, so it feeds the watchdog. */
static void plant_idle(void *ctx)
{
    (void)ctx;
    board_watchdog_feed();
    wait_for_interrupt();
}

/* The NMI's stall action: the safe action to the plant, by polling UART1 (the main loop is stuck, its TX
 * ring may hold half a frame: the frame's leading delimiter makes the plant drop that). */
static void on_stall(void)
{
    static uint8_t wire[FB_MAX_WIRE];
    size_t n = plant_link_safe_frame(&plant, core.safe, wire, sizeof wire);
    uart_write_polled(&plant_uart, wire, n);
}

/* The plant is the policy's task: its sizes, and the firmware acts in real time. 0 if it is not. */
static int use_policy(void)
{
#ifdef FW_POLICY
    return fw_policy_attach(&config, &hal) == 0;
#else
    return 1;
#endif
}

int main(void)
{
    static const plant_io io = {NULL, plant_write, plant_read, board_clock, plant_idle};
    static const fw_hal board = {.millis = board_clock, .serial_write = host_write};
    static uint8_t buf[64];
    board_clock_start();
    uart_init(&host_uart, CMSDK_UART0, UART0_RX_IRQ, UART0_TX_IRQ, BAUD);
    uart_init(&plant_uart, CMSDK_UART1, UART1_RX_IRQ, UART1_TX_IRQ, BAUD);
    irq_enable();
    plant_link_init(&plant, &io, PLANT_TIMEOUT_MS);
    while (plant_link_hello(&plant, &config) != 0) { /* until the plant answers */
    }
    config.watchdog_ms = WATCHDOG_MS;
    config.firmware_id = FIRMWARE_ID;
    plant_link_hal(&plant, &hal, &board);
    if (!use_policy() || fw_core_init(&core, &config, &hal, board_millis()) != FW_INIT_OK) {
        for (;;) { /* a plant this firmware cannot serve: nothing moves; the board watchdog is not started */
        }
    }
    board_watchdog_start(BOARD_WATCHDOG_MS, on_stall);
    for (;;) {
        size_t n = uart_read(&host_uart, buf, sizeof buf);
        fw_core_run(&core, buf, n);
        board_watchdog_feed();
        if (n == 0) {
            wait_for_interrupt();
        }
    }
}
