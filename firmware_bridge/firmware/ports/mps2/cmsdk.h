/*
 * cmsdk.h - the registers this port uses on the MPS2 board with the AN385 FPGA image (Cortex-M3).
 *
 * Sources: ARM DDI0479C (Cortex-M System Design Kit TRM: APB UART section 4.3, APB watchdog section 4.7),
 * ARM DAI0385D (AN385: memory map and interrupt numbers), ARM DDI0403E (ARMv7-M ARM: SysTick B3.3,
 * NVIC B3.4). QEMU's `-M mps2-an385` models these, with the system clock at 25 MHz.
 */
#ifndef MPS2_CMSDK_H
#define MPS2_CMSDK_H

#include <stdint.h>

#define MPS2_SYSCLK_HZ 25000000u

/* APB UART (DDI0479C 4.3). */
typedef struct cmsdk_uart {
    volatile uint32_t data;     /* 0x00: RX byte on read, TX byte on write */
    volatile uint32_t state;    /* 0x04: bit 0 TX full, bit 1 RX full, bits 2-3 overrun (write 1 to clear) */
    volatile uint32_t ctrl;     /* 0x08: enables, see below */
    volatile uint32_t intstatus; /* 0x0C: read: pending interrupts; write 1: clear */
    volatile uint32_t bauddiv;  /* 0x10: clock divider, >= 16 */
} cmsdk_uart;

#define UART_STATE_TX_FULL (1u << 0)
#define UART_STATE_RX_FULL (1u << 1)
#define UART_STATE_OVERRUNS (3u << 2)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
#define UART_CTRL_TX_INT (1u << 2)
#define UART_CTRL_RX_INT (1u << 3)
#define UART_INT_TX (1u << 0)
#define UART_INT_RX (1u << 1)
#define UART_INT_OVERRUNS (3u << 2)

#define CMSDK_UART0 ((cmsdk_uart *)0x40004000u)
#define CMSDK_UART1 ((cmsdk_uart *)0x40005000u)
/* AN385 interrupt numbers: UARTn RX is 2n, TX is 2n + 1. */
#define UART0_RX_IRQ 0u
#define UART0_TX_IRQ 1u
#define UART1_RX_IRQ 2u
#define UART1_TX_IRQ 3u

/* APB watchdog (DDI0479C 4.7): counts down from LOAD at the system clock; at zero it raises WDOGINT (the
 * NMI on AN385) and reloads; at zero again with the interrupt still pending and RESEN set, it resets. */
typedef struct cmsdk_watchdog {
    volatile uint32_t load;    /* 0x00 */
    volatile uint32_t value;   /* 0x04 */
    volatile uint32_t ctrl;    /* 0x08: bit 0 INTEN, bit 1 RESEN */
    volatile uint32_t intclr;  /* 0x0C: any write clears the interrupt and reloads the counter */
    volatile uint32_t ris;     /* 0x10 */
    volatile uint32_t mis;     /* 0x14 */
    uint32_t reserved[762];
    volatile uint32_t lock;    /* 0xC00: write WDOG_UNLOCK to enable writes, anything else to lock */
} cmsdk_watchdog;

#define CMSDK_WATCHDOG ((cmsdk_watchdog *)0x40008000u)
#define WDOG_CTRL_INTEN (1u << 0)
#define WDOG_CTRL_RESEN (1u << 1)
#define WDOG_UNLOCK 0x1ACCE551u

/* APB timer (DDI0479C 4.4): a 32-bit down counter at the system clock, reloading at zero. */
typedef struct cmsdk_timer {
    volatile uint32_t ctrl;      /* 0x00: bit 0 enable, bit 3 interrupt enable */
    volatile uint32_t value;     /* 0x04 */
    volatile uint32_t reload;    /* 0x08 */
    volatile uint32_t intstatus; /* 0x0C */
} cmsdk_timer;

#define CMSDK_TIMER0 ((cmsdk_timer *)0x40000000u)
#define TIMER_CTRL_EN (1u << 0)

/* SysTick (DDI0403E B3.3). */
typedef struct systick_regs {
    volatile uint32_t csr; /* bit 0 ENABLE, bit 1 TICKINT, bit 2 CLKSOURCE (1: the processor clock) */
    volatile uint32_t rvr;
    volatile uint32_t cvr;
    volatile uint32_t calib;
} systick_regs;

#define SYSTICK ((systick_regs *)0xE000E010u)

/* NVIC (DDI0403E B3.4): one bit per interrupt in the set-enable and clear-enable registers. */
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICER0 (*(volatile uint32_t *)0xE000E180u)

static inline void irq_disable(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
}

static inline void irq_enable(void)
{
    __asm__ volatile("cpsie i" ::: "memory");
}

/* Interrupts off, returning whether they were on (PRIMASK clear) so the caller can restore them. */
static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* Sleep until an interrupt (SysTick wakes the core every millisecond). */
static inline void wait_for_interrupt(void)
{
    __asm__ volatile("wfi" ::: "memory");
}

#endif /* MPS2_CMSDK_H */
