/* board.c - SysTick millisecond clock and the CMSDK watchdog. See board.h. */
#include "board.h"

#include <stddef.h>

#include "cmsdk.h"

#define CYCLES_PER_MS (MPS2_SYSCLK_HZ / 1000u)

static uint32_t clock_ms;      /* milliseconds counted so far */
static uint32_t clock_cycles;  /* and the cycles of the current one, 0 .. CYCLES_PER_MS - 1 */
static uint32_t clock_last;    /* the timer's value when last read */
static volatile uint32_t stalls;
static void (*stall_hook)(void);

/* Timer 0 counts down from 2^32 - 1 at the system clock: it wraps every 171 s, so reading it once a
 * millisecond (the SysTick interrupt does) never misses a wrap. A tick interrupt taken late, or not at all
 * while interrupts are masked, costs no time: the clock is the counter's, not a count of interrupts. */
uint32_t board_millis(void)
{
    uint32_t primask = irq_save(), now = CMSDK_TIMER0->value, ms;
    clock_cycles += clock_last - now;
    clock_last = now;
    clock_ms += clock_cycles / CYCLES_PER_MS;
    clock_cycles %= CYCLES_PER_MS;
    ms = clock_ms;
    irq_restore(primask);
    return ms;
}

/* Wakes the main loop from its sleep every millisecond and keeps the clock's reading fresh. */
void systick_handler(void)
{
    (void)board_millis();
}

void board_clock_start(void)
{
    CMSDK_TIMER0->ctrl = 0;
    CMSDK_TIMER0->reload = 0xFFFFFFFFu;
    CMSDK_TIMER0->value = 0xFFFFFFFFu;
    CMSDK_TIMER0->ctrl = TIMER_CTRL_EN;
    clock_last = CMSDK_TIMER0->value;
    SYSTICK->rvr = CYCLES_PER_MS - 1u;
    SYSTICK->cvr = 0;
    SYSTICK->csr = 7u; /* processor clock, interrupt, enable */
}

void board_watchdog_start(uint32_t timeout_ms, void (*on_stall)(void))
{
    stall_hook = on_stall;
    CMSDK_WATCHDOG->lock = WDOG_UNLOCK;
    CMSDK_WATCHDOG->load = (MPS2_SYSCLK_HZ / 1000u) * timeout_ms;
    CMSDK_WATCHDOG->intclr = 1u;
    CMSDK_WATCHDOG->ctrl = WDOG_CTRL_INTEN | WDOG_CTRL_RESEN;
    CMSDK_WATCHDOG->lock = 0;
}

void board_watchdog_feed(void)
{
    CMSDK_WATCHDOG->lock = WDOG_UNLOCK;
    CMSDK_WATCHDOG->intclr = 1u;
    CMSDK_WATCHDOG->lock = 0;
}

uint32_t board_watchdog_stalls(void)
{
    return stalls;
}

/* The watchdog's first expiry. The interrupt stays pending (a loop that recovers feeds it and clears it);
 * still pending at the next expiry, it resets the board. */
void nmi_handler(void)
{
    stalls = stalls + 1u;
    if (stall_hook != NULL) {
        stall_hook();
    }
}
