/* uart.c - the interrupt-driven CMSDK APB UART with ring buffers. See uart.h. */
#include "uart.h"

#define RING_MASK (UART_RING_SIZE - 1u)

#if (UART_RING_SIZE & RING_MASK) != 0
#error "UART_RING_SIZE must be a power of two"
#endif

static uint32_t ring_used(const uart_ring *r)
{
    return (r->head - r->tail) & 0xFFFFFFFFu;
}

void uart_init(uart_port *u, cmsdk_uart *regs, uint32_t rx_irq, uint32_t tx_irq, uint32_t baud)
{
    u->regs = regs;
    u->rx.head = u->rx.tail = 0;
    u->tx.head = u->tx.tail = 0;
    u->tx_busy = 0;
    u->rx_dropped = 0;
    u->tx_dropped = 0;
    regs->ctrl = 0;
    regs->bauddiv = MPS2_SYSCLK_HZ / baud;
    regs->state = UART_STATE_OVERRUNS;
    regs->intstatus = UART_INT_TX | UART_INT_RX | UART_INT_OVERRUNS;
    regs->ctrl = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_TX_INT | UART_CTRL_RX_INT;
    NVIC_ISER0 = (1u << rx_irq) | (1u << tx_irq);
}

size_t uart_read(uart_port *u, uint8_t *out, size_t cap)
{
    size_t n = 0;
    uint32_t tail = u->rx.tail;
    while (n < cap && tail != u->rx.head) {
        out[n++] = u->rx.buf[tail & RING_MASK];
        ++tail;
    }
    u->rx.tail = tail;
    return n;
}

int uart_write(uart_port *u, const uint8_t *data, size_t len)
{
    uint32_t head = u->tx.head, primask;
    size_t i;
    if (len > UART_RING_SIZE - ring_used(&u->tx)) {
        u->tx_dropped++;
        return -1;
    }
    for (i = 0; i < len; ++i) {
        u->tx.buf[(head + i) & RING_MASK] = data[i];
    }
    u->tx.head = head + (uint32_t)len;
    primask = irq_save();
    if (!u->tx_busy && u->tx.tail != u->tx.head) {
        u->tx_busy = 1;
        u->regs->data = u->tx.buf[u->tx.tail & RING_MASK];
        u->tx.tail = u->tx.tail + 1u;
    }
    irq_restore(primask);
    return 0;
}

size_t uart_tx_pending(const uart_port *u)
{
    return ring_used(&u->tx);
}

void uart_write_polled(uart_port *u, const uint8_t *data, size_t len)
{
    size_t i;
    u->regs->ctrl &= ~UART_CTRL_TX_INT;
    u->tx.tail = u->tx.head;
    for (i = 0; i < len; ++i) {
        while (u->regs->state & UART_STATE_TX_FULL) {
        }
        u->regs->data = data[i];
    }
    while (u->regs->state & UART_STATE_TX_FULL) {
    }
    u->tx_busy = 0;
    u->regs->intstatus = UART_INT_TX;
    u->regs->ctrl |= UART_CTRL_TX_INT;
}

/* Clear the interrupt first, then drain: a byte that lands after the drain raises it again. */
void uart_rx_isr(uart_port *u)
{
    u->regs->intstatus = UART_INT_RX;
    if (u->regs->state & UART_STATE_OVERRUNS) {
        u->regs->state = UART_STATE_OVERRUNS;
        u->rx_dropped++;
    }
    while (u->regs->state & UART_STATE_RX_FULL) {
        uint8_t byte = (uint8_t)u->regs->data;
        uint32_t head = u->rx.head;
        if (ring_used(&u->rx) < UART_RING_SIZE) {
            u->rx.buf[head & RING_MASK] = byte;
            u->rx.head = head + 1u;
        } else {
            u->rx_dropped++;
        }
    }
}

void uart_tx_isr(uart_port *u)
{
    u->regs->intstatus = UART_INT_TX;
    if (u->tx.tail != u->tx.head && !(u->regs->state & UART_STATE_TX_FULL)) {
        u->regs->data = u->tx.buf[u->tx.tail & RING_MASK];
        u->tx.tail = u->tx.tail + 1u;
    } else {
        u->tx_busy = 0;
    }
}
