/*
 * uart.h - an interrupt-driven CMSDK APB UART with a receive and a transmit ring buffer.
 *
 * The receive interrupt moves each byte into the RX ring (a byte that finds it full is counted and lost);
 * the main loop takes them with uart_read(). uart_write() queues a whole frame in the TX ring or, when it
 * does not fit, drops it whole and counts it: it never waits for the line. The transmit interrupt sends
 * the next byte each time the UART's holding register empties. One producer and one consumer per ring
 * (the main loop and one interrupt), so the indices need no lock; uart_write() masks interrupts only to
 * start an idle transmitter.
 */
#ifndef MPS2_UART_H
#define MPS2_UART_H

#include <stddef.h>
#include <stdint.h>

#include "cmsdk.h"

#ifndef UART_RING_SIZE
#define UART_RING_SIZE 256u /* a power of two; holds one largest frame (182 bytes) with room to spare */
#endif

typedef struct uart_ring {
    uint8_t buf[UART_RING_SIZE];
    volatile uint32_t head; /* written by the producer only */
    volatile uint32_t tail; /* written by the consumer only */
} uart_ring;

typedef struct uart_port {
    cmsdk_uart *regs;
    uart_ring rx;
    uart_ring tx;
    volatile uint8_t tx_busy;     /* a byte is on the line; the TX interrupt sends the rest */
    volatile uint32_t rx_dropped; /* bytes lost to a full RX ring or a hardware overrun */
    uint32_t tx_dropped;          /* frames refused by uart_write() for want of room */
} uart_port;

/* Reset the rings and counters, set the baud rate, enable the UART and its two interrupts in the NVIC. */
void uart_init(uart_port *u, cmsdk_uart *regs, uint32_t rx_irq, uint32_t tx_irq, uint32_t baud);

/* Up to cap received bytes into out; returns how many. */
size_t uart_read(uart_port *u, uint8_t *out, size_t cap);

/* Queue all len bytes, or none when they do not fit (returns -1 and counts the drop); 0 when queued. */
int uart_write(uart_port *u, const uint8_t *data, size_t len);

/* Bytes waiting in the TX ring (not yet handed to the UART). */
size_t uart_tx_pending(const uart_port *u);

/* From an exception that preempts everything (the watchdog's NMI): discard the TX ring and send len bytes
 * by polling the UART, with its TX interrupt masked. The line may carry a cut frame before them. */
void uart_write_polled(uart_port *u, const uint8_t *data, size_t len);

/* The interrupt handlers' bodies: the port's handlers call them with their UART. */
void uart_rx_isr(uart_port *u);
void uart_tx_isr(uart_port *u);

#endif /* MPS2_UART_H */
