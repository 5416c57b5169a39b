/*
 * startup.c - the vector table and the reset handler of the MPS2 port (AN385: Cortex-M3, AN386: Cortex-M4F).
 *
 * The table (ARMv7-M ARM DDI0403E B1.5.3): the initial stack pointer, the 15 system exceptions, then the
 * board's 32 interrupts (AN385 DAI0385D table 4-2). Handlers are weak: a module defines the ones it uses
 * (board.c: SysTick and the watchdog's NMI, uart.c: the UART interrupts); the rest spin in
 * default_handler, where the watchdog finds the stall and puts the actuators in the safe state.
 */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void reset_handler(void);
void default_handler(void);

#define WEAK_DEFAULT __attribute__((weak, alias("default_handler")))
void nmi_handler(void) WEAK_DEFAULT;
void hardfault_handler(void) WEAK_DEFAULT;
void systick_handler(void) WEAK_DEFAULT;
void uart0_rx_handler(void) WEAK_DEFAULT;
void uart0_tx_handler(void) WEAK_DEFAULT;
void uart1_rx_handler(void) WEAK_DEFAULT;
void uart1_tx_handler(void) WEAK_DEFAULT;

typedef void (*vector)(void);

__attribute__((section(".isr_vector"), used)) static const vector vectors[16 + 32] = {
    (vector)(uintptr_t)&_estack, /* the initial main stack pointer */
    reset_handler,
    nmi_handler,
    hardfault_handler,
    default_handler, /* MemManage */
    default_handler, /* BusFault */
    default_handler, /* UsageFault */
    0, 0, 0, 0,
    default_handler, /* SVCall */
    default_handler, /* DebugMonitor */
    0,
    default_handler, /* PendSV */
    systick_handler,
    /* IRQ 0.. */
    uart0_rx_handler, uart0_tx_handler, uart1_rx_handler, uart1_tx_handler,
    default_handler, default_handler, default_handler, default_handler, /* UART2, GPIO */
    default_handler, default_handler, default_handler, default_handler, /* timers, dual timer, SPI */
    default_handler, default_handler, default_handler, default_handler, /* UART overflow, Ethernet, ... */
    default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler,
};

/* Enable the FPU where there is one (Cortex-M4F: full access to coprocessors 10 and 11, DDI0403E B3.2.20),
 * copy .data from flash, zero .bss, run main. */
void reset_handler(void)
{
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(&_sdata, &_sidata, (size_t)((uintptr_t)&_edata - (uintptr_t)&_sdata));
    memset(&_sbss, 0, (size_t)((uintptr_t)&_ebss - (uintptr_t)&_sbss));
    (void)main();
    for (;;) {
    }
}

void default_handler(void)
{
    for (;;) {
    }
}
