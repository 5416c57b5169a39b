/*
 * target_io.c - what the C unit tests (../../../tests/) need from newlib when they run on the board:
 * stdout and stderr on UART0 (polled: test output, not the firmware's driver), a heap above the stack,
 * one read-only file (the protocol vectors, linked into the image by vectors_blob.S) for fopen(), and
 * exit() through semihosting so that QEMU ends with the test's status (run it with
 * `-semihosting-config enable=on,target=native`).
 *
 * The tests keep their host main(argc, argv): they are compiled with -Dmain=test_main and main() here
 * hands them the vectors file's name. target_cycles() counts the 25 MHz system clock (APB timer 0, started
 * by main) for tests that time themselves. Test images only: the firmware links none of this (it has no heap).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../cmsdk.h"

#define VECTORS_NAME "protocol_vectors.json"
#define VECTORS_FD 3

extern const char vectors_json[], vectors_json_end[];
extern char _heap_start, _heap_end;

int test_main(int argc, char **argv);
uint32_t target_cycles(void);
int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _open(const char *path, int flags, int mode);
int _close(int fd);
int _lseek(int fd, int offset, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
void *_sbrk(ptrdiff_t incr);
void _exit(int status);
int _kill(int pid, int sig);
int _getpid(void);

static size_t vectors_pos;

int main(void)
{
    static char name[] = "test", file[] = VECTORS_NAME;
    static char *argv[] = {name, file, NULL};
    CMSDK_UART0->bauddiv = MPS2_SYSCLK_HZ / 115200u;
    CMSDK_UART0->ctrl = UART_CTRL_TX_EN;
    CMSDK_TIMER0->reload = 0xFFFFFFFFu;
    CMSDK_TIMER0->value = 0xFFFFFFFFu;
    CMSDK_TIMER0->ctrl = TIMER_CTRL_EN;
    exit(test_main(2, argv));
}

uint32_t target_cycles(void)
{
    return 0xFFFFFFFFu - CMSDK_TIMER0->value;
}

int _write(int fd, const char *buf, int len)
{
    int i;
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    for (i = 0; i < len; ++i) {
        while (CMSDK_UART0->state & UART_STATE_TX_FULL) {
        }
        CMSDK_UART0->data = (uint8_t)buf[i];
    }
    return len;
}

int _read(int fd, char *buf, int len)
{
    size_t left = (size_t)(vectors_json_end - vectors_json) - vectors_pos;
    size_t n = (size_t)len < left ? (size_t)len : left;
    if (fd != VECTORS_FD) {
        errno = EBADF;
        return -1;
    }
    memcpy(buf, vectors_json + vectors_pos, n);
    vectors_pos += n;
    return (int)n;
}

/* Any path whose last component is the vectors file's name opens the linked copy. */
int _open(const char *path, int flags, int mode)
{
    size_t len = strlen(path), name_len = strlen(VECTORS_NAME);
    (void)flags;
    (void)mode;
    if (len < name_len || strcmp(path + len - name_len, VECTORS_NAME) != 0) {
        errno = ENOENT;
        return -1;
    }
    vectors_pos = 0;
    return VECTORS_FD;
}

int _close(int fd)
{
    return fd == VECTORS_FD ? 0 : -1;
}

int _lseek(int fd, int offset, int whence)
{
    long size = (long)(vectors_json_end - vectors_json), pos;
    if (fd != VECTORS_FD) {
        errno = ESPIPE;
        return -1;
    }
    pos = whence == SEEK_SET ? offset : whence == SEEK_CUR ? (long)vectors_pos + offset : size + offset;
    if (pos < 0 || pos > size) {
        errno = EINVAL;
        return -1;
    }
    vectors_pos = (size_t)pos;
    return (int)pos;
}

int _fstat(int fd, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_mode = fd == VECTORS_FD ? S_IFREG : S_IFCHR;
    st->st_size = fd == VECTORS_FD ? (off_t)(vectors_json_end - vectors_json) : 0;
    return 0;
}

int _isatty(int fd)
{
    return fd <= 2;
}

void *_sbrk(ptrdiff_t incr)
{
    static char *brk = &_heap_start;
    char *old = brk;
    if (incr > &_heap_end - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += incr;
    return old;
}

/* Semihosting SYS_EXIT (0x18) with ADP_Stopped_ApplicationExit (0x20026): QEMU exits 0; any other reason
 * (here RunTimeErrorUnknown, 0x20023) makes it exit 1. */
void _exit(int status)
{
    register uint32_t op __asm__("r0") = 0x18u;
    register uint32_t reason __asm__("r1") = status == 0 ? 0x20026u : 0x20023u;
    for (;;) {
        __asm__ volatile("bkpt 0xab" : "+r"(op) : "r"(reason) : "memory");
    }
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}
