/*
 * main.c - the reference firmware on the MPS2 AN385 board (Cortex-M3), e.g. under `qemu-system-arm
 * -M mps2-an385 -kernel robopg-fw.elf -serial pty`.
 *
 * The host link is UART0 (interrupt-driven, ring buffers); the plant is the host build's point mass
 * (../../host/sim_plant.c): obs [x m, v m/s], action [force N] in [-1, 1], lockstep and resettable,
 * control period 20 ms, protocol watchdog 200 ms, firmware id "robopg-ref-mps2". The main loop feeds
 * the board watchdog; when it stalls for BOARD_WATCHDOG_MS the NMI puts the plant's force at the safe
 * action, and the board resets if the stall lasts twice that.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../fw_core.h"
#include "../../host/sim_plant.h"
#include "board.h"
#include "uart.h"

#define FIRMWARE_ID "robopg-ref-mps2"
#define HOST_BAUD 115200u
#define PERIOD_US 20000u
#define BOARD_WATCHDOG_MS 50u

static uart_port host_uart;
static sim_plant plant;
static fw_core core;

static const fw_config config = {
    .obs_dim = 2,
    .action_dim = 1,
    .capabilities = FB_CAP_CAN_RESET | FB_CAP_LOCKSTEP,
    .control_period_us = PERIOD_US,
    .watchdog_ms = 200,
    .action_low = {-1.0f},
    .action_high = {1.0f},
    .has_safe_action = 0,
    .safe_action = {0.0f},
    .firmware_id = FIRMWARE_ID,
};

void uart0_rx_handler(void)
{
    uart_rx_isr(&host_uart);
}

void uart0_tx_handler(void)
{
    uart_tx_isr(&host_uart);
}

/* ----- HAL ----------------------------------------------------------------------------------------------- */

static uint32_t hal_millis(void *ctx)
{
    (void)ctx;
    return board_millis();
}

static int hal_read_sensors(void *ctx, float *obs, uint8_t obs_dim)
{
    (void)ctx;
    (void)obs_dim;
    obs[0] = (float)plant.x;
    obs[1] = (float)plant.v;
    return 0;
}

static int hal_write_actuators(void *ctx, const float *action, uint8_t action_dim)
{
    (void)ctx;
    (void)action_dim;
    plant.u = action[0];
    return 0;
}

static void hal_write_safe(void *ctx, const float *safe, uint8_t action_dim)
{
    (void)ctx;
    (void)action_dim;
    plant.u = safe[0];
}

static int hal_plant_reset(void *ctx)
{
    (void)ctx;
    sim_plant_reset(&plant);
    return 0;
}

static int hal_plant_step(void *ctx)
{
    (void)ctx;
    sim_plant_step(&plant);
    return 0;
}

static int hal_terminated(void *ctx)
{
    (void)ctx;
    return sim_plant_terminated(&plant);
}

static void hal_serial_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)uart_write(&host_uart, data, len);
}

static const fw_hal hal = {
    .ctx = NULL,
    .millis = hal_millis,
    .read_sensors = hal_read_sensors,
    .write_actuators = hal_write_actuators,
    .write_safe = hal_write_safe,
    .plant_reset = hal_plant_reset,
    .plant_step = hal_plant_step,
    .terminated = hal_terminated,
    .serial_write = hal_serial_write,
};

/* The NMI's stall action: the safe force, written to what the NMI may touch (the plant's command). */
static void on_stall(void)
{
    plant.u = config.safe_action[0];
}

int main(void)
{
    static uint8_t buf[64];
    board_clock_start();
    sim_plant_init(&plant, PERIOD_US / 1e6, 2.0);
    uart_init(&host_uart, CMSDK_UART0, UART0_RX_IRQ, UART0_TX_IRQ, HOST_BAUD);
    if (fw_core_init(&core, &config, &hal, board_millis()) != FW_INIT_OK) {
        for (;;) { /* a bad configuration: nothing moves; the board watchdog is not started */
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
