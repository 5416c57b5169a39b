/*
 * main.c - the reference firmware built for a POSIX host, serving a simulated point mass on a pty, or with
 * --plant-pty the plant behind a second pty (docs/protocol.md section 12).
 *
 *     build/robopg-fw-host [--watchdog-ms N] [--period-us N] [--end-stop M] [--plant-pty]
 *
 * Opens a pseudo-terminal, prints the path of its slave end as the first line of stdout, then runs the
 * firmware core on it until SIGTERM, SIGINT or EOF on stdin. Connect with
 * firmware_bridge.link.RobotLink.open(path). The robot: obs [position m, velocity m/s], action [force N]
 * limited to [-1, 1], lockstep (the plant steps once per ACTION) and resettable, firmware id
 * "robopg-ref-host". With --plant-pty, a second pty's path is the second line of stdout; the firmware
 * waits for a plant there (`robopg robot-sim --plant-port PATH`) and takes its sizes, limits, period and
 * mode from it (--period-us and --end-stop do not apply). Counters go to stderr at exit.
 *
 * Built with -DFW_POLICY and a policy from `robopg export --format c` (make host-policy POLICY=DIR:
 * build/robopg-fw-host-policy), it is the POLICY-mode firmware "robopg-ref-host-policy" (hal.h), as the
 * Cortex-M port's: from each RESET it runs the policy at every control tick, stepping the plant once per tick,
 * and the host only supervises. The plant must be the policy's task (its sizes), else it exits with 2.
 */
#define _XOPEN_SOURCE 600

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../fw_core.h"
#include "../plant_link.h"
#include "sim_plant.h"

#ifdef FW_POLICY
#include "../fw_policy.h"
#define FIRMWARE_ID "robopg-ref-host-policy"
#else
#define FIRMWARE_ID "robopg-ref-host"
#endif
#define MAX_SLEEP_MS 50 /* longest poll() wait: bounds how late a signal is noticed */
#define PLANT_TIMEOUT_MS 1000 /* a simulated plant on a busy computer can be slow */

typedef struct host {
    sim_plant plant;
    int fd;          /* pty master */
    int plant_fd;    /* the plant line's pty master (--plant-pty), else -1 */
    struct timespec origin;
    unsigned long tx_dropped;
    unsigned long plant_dropped;
} host;

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ----- HAL ----------------------------------------------------------------------------------------------- */

static uint32_t hal_millis(void *ctx)
{
    host *h = ctx;
    struct timespec now;
    long long ms;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(now.tv_sec - h->origin.tv_sec) * 1000LL + (now.tv_nsec - h->origin.tv_nsec) / 1000000L;
    return (uint32_t)ms;
}

static int hal_read_sensors(void *ctx, float *obs, uint8_t obs_dim)
{
    host *h = ctx;
    if (obs_dim != 2) {
        return 1;
    }
    obs[0] = (float)h->plant.x;
    obs[1] = (float)h->plant.v;
    return 0;
}

static int hal_write_actuators(void *ctx, const float *action, uint8_t action_dim)
{
    host *h = ctx;
    if (action_dim != 1) {
        return 2;
    }
    h->plant.u = action[0];
    return 0;
}

static void hal_write_safe(void *ctx, const float *safe, uint8_t action_dim)
{
    host *h = ctx;
    h->plant.u = action_dim > 0 ? safe[0] : 0.0;
}

static int hal_plant_reset(void *ctx)
{
    host *h = ctx;
    sim_plant_reset(&h->plant);
    return 0;
}

static int hal_plant_step(void *ctx)
{
    host *h = ctx;
    sim_plant_step(&h->plant);
    return 0;
}

static int hal_terminated(void *ctx)
{
    host *h = ctx;
    return sim_plant_terminated(&h->plant);
}

/* Write whole frames to fd; a frame the peer does not drain within ~100 ms is dropped (as a UART would). */
static void write_frames(int fd, const uint8_t *data, size_t len, unsigned long *dropped)
{
    size_t done = 0;
    int tries = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && tries++ < 10) {
            struct pollfd p;
            p.fd = fd;
            p.events = POLLOUT;
            p.revents = 0;
            (void)poll(&p, 1, 10);
            continue;
        }
        (*dropped)++;
        return;
    }
}

static void hal_serial_write(void *ctx, const uint8_t *data, size_t len)
{
    host *h = ctx;
    write_frames(h->fd, data, len, &h->tx_dropped);
}

/* ----- the plant line (--plant-pty) ------------------------------------------------------------------------ */

static void plant_write(void *ctx, const uint8_t *data, size_t len)
{
    host *h = ctx;
    write_frames(h->plant_fd, data, len, &h->plant_dropped);
}

static size_t plant_read(void *ctx, uint8_t *buf, size_t cap)
{
    host *h = ctx;
    ssize_t n = read(h->plant_fd, buf, cap);
    return n > 0 ? (size_t)n : 0u;
}

static uint32_t plant_millis(void *ctx)
{
    return hal_millis(ctx);
}

static void plant_idle(void *ctx)
{
    host *h = ctx;
    struct pollfd p;
    p.fd = h->plant_fd;
    p.events = POLLIN;
    p.revents = 0;
    (void)poll(&p, 1, 1);
}

/* ----- pty ------------------------------------------------------------------------------------------------ */

static int make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        return -1;
    }
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8 | CREAD | CLOCAL;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &t);
}

/* Open a pty pair: returns the master; *slave_fd stays open for the life of the process so the master
 * never sees EIO between clients and bytes never echo. */
static int open_pty(int *slave_fd, char *path, size_t path_size)
{
    const char *name;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) {
        perror("posix_openpt");
        return -1;
    }
    if (grantpt(master) != 0 || unlockpt(master) != 0 || (name = ptsname(master)) == NULL) {
        perror("grantpt/unlockpt/ptsname");
        close(master);
        return -1;
    }
    if (strlen(name) + 1 > path_size) {
        fprintf(stderr, "pty path too long\n");
        close(master);
        return -1;
    }
    strcpy(path, name);
    *slave_fd = open(path, O_RDWR | O_NOCTTY);
    if (*slave_fd < 0 || make_raw(*slave_fd) != 0) {
        perror(path);
        close(master);
        return -1;
    }
    if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) != 0) {
        perror("fcntl");
        close(master);
        close(*slave_fd);
        return -1;
    }
    return master;
}

/* ----- main ----------------------------------------------------------------------------------------------- */

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: robopg-fw-host [--watchdog-ms N (0..65535, default 200)] "
               "[--period-us N (1..10000000, default 20000)] [--end-stop MILLIMETRES (default 2000)] "
               "[--plant-pty]\n");
}

int main(int argc, char **argv)
{
    static fw_config cfg;
    static fw_hal hal;
    static fw_core core;
    static host h;
    static plant_link plant;
    static uint8_t buf[512];
    char path[256], plant_path[256];
    long watchdog_ms = 200, period_us = 20000, end_stop_mm = 2000;
    int i, slave, plant_slave = -1, stdin_open = 1, with_plant = 0;
    fw_init_result init;
    struct sigaction sa;

    for (i = 1; i < argc; ++i) {
        long *target = NULL, lo = 0, hi = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--plant-pty") == 0) {
            with_plant = 1;
            continue;
        } else if (strcmp(argv[i], "--watchdog-ms") == 0) {
            target = &watchdog_ms, lo = 0, hi = 65535;
        } else if (strcmp(argv[i], "--period-us") == 0) {
            target = &period_us, lo = 1, hi = 10000000;
        } else if (strcmp(argv[i], "--end-stop") == 0) {
            target = &end_stop_mm, lo = 1, hi = 1000000;
        }
        if (target == NULL || i + 1 >= argc || parse_long(argv[i + 1], lo, hi, target) != 0) {
            usage(stderr);
            return 2;
        }
        ++i;
    }

    cfg.obs_dim = 2;
    cfg.action_dim = 1;
    cfg.capabilities = FB_CAP_CAN_RESET | FB_CAP_LOCKSTEP;
    cfg.control_period_us = (uint32_t)period_us;
    cfg.watchdog_ms = (uint16_t)watchdog_ms;
    cfg.action_low[0] = -1.0f;
    cfg.action_high[0] = 1.0f;
    cfg.firmware_id = FIRMWARE_ID;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    h.fd = open_pty(&slave, path, sizeof path);
    if (h.fd < 0) {
        return 1;
    }
    h.plant_fd = -1;
    clock_gettime(CLOCK_MONOTONIC, &h.origin);
    sim_plant_init(&h.plant, (double)period_us / 1e6, (double)end_stop_mm / 1000.0);

    hal.ctx = &h;
    hal.millis = hal_millis;
    hal.read_sensors = hal_read_sensors;
    hal.write_actuators = hal_write_actuators;
    hal.write_safe = hal_write_safe;
    hal.plant_reset = hal_plant_reset;
    hal.plant_step = hal_plant_step;
    hal.terminated = hal_terminated;
    hal.serial_write = hal_serial_write;
    if (with_plant) {
        static const plant_io io = {NULL, plant_write, plant_read, plant_millis, plant_idle};
        plant_io bound = io;
        static fw_hal board;
        h.plant_fd = open_pty(&plant_slave, plant_path, sizeof plant_path);
        if (h.plant_fd < 0) {
            return 1;
        }
        printf("%s\n%s\n", path, plant_path);
        fflush(stdout);
        bound.ctx = &h;
        plant_link_init(&plant, &bound, PLANT_TIMEOUT_MS);
        while (plant_link_hello(&plant, &cfg) != 0) { /* until the plant answers on its pty */
            if (stop_requested) {
                return 0;
            }
        }
        board = hal;
        plant_link_hal(&plant, &hal, &board);
    }
#ifdef FW_POLICY
    if (fw_policy_attach(&cfg, &hal) != 0) {
        fprintf(stderr, "robopg-fw-host: the policy takes %u observations and %u actions; the plant has %u and %u\n",
                (unsigned)fw_policy_obs_dim, (unsigned)fw_policy_action_dim, (unsigned)cfg.obs_dim,
                (unsigned)cfg.action_dim);
        return 2;
    }
#endif
    init = fw_core_init(&core, &cfg, &hal, hal_millis(&h));
    if (init != FW_INIT_OK) {
        fprintf(stderr, "fw_core_init failed (%d)\n", (int)init);
        return 1;
    }

    if (!with_plant) {
        printf("%s\n", path);
        fflush(stdout);
    }
    fprintf(stderr, "robopg-fw-host: serving %s (period %lu us, watchdog %ld ms)%s%s\n", path,
            (unsigned long)cfg.control_period_us, watchdog_ms, with_plant ? ", plant on " : "",
            with_plant ? plant_path : "");

    while (!stop_requested) {
        struct pollfd fds[2];
        nfds_t nfds = 1;
        uint32_t now = hal_millis(&h), wait;
        int r;
        fw_core_poll(&core, now);
        wait = fw_core_ms_until_due(&core, now);
        fds[0].fd = h.fd;
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        if (stdin_open) {
            fds[1].fd = STDIN_FILENO;
            fds[1].events = POLLIN;
            fds[1].revents = 0;
            nfds = 2;
        }
        r = poll(fds, nfds, wait < MAX_SLEEP_MS ? (int)wait : MAX_SLEEP_MS);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("poll");
            break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(h.fd, buf, sizeof buf);
            if (n > 0) {
                fw_core_feed(&core, buf, (size_t)n, hal_millis(&h));
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != EIO) {
                perror("read pty");
                break;
            }
        }
        if (nfds == 2 && (fds[1].revents & POLLNVAL)) {
            stdin_open = 0; /* no stdin at all: only a signal stops us */
        } else if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                break; /* EOF on stdin: the parent is gone or asks us to stop */
            }
        }
    }

    fprintf(stderr,
            "robopg-fw-host: %lu frames in, %lu out, %lu CRC errors, %lu malformed, %lu rejected, %lu refused, "
            "%lu watchdog trips, %lu plant steps, %lu dropped\n",
            (unsigned long)core.stats.frames_received, (unsigned long)core.stats.frames_sent,
            (unsigned long)core.stats.crc_errors, (unsigned long)core.stats.malformed_frames,
            (unsigned long)core.stats.rejected_messages, (unsigned long)core.stats.refused_commands,
            (unsigned long)core.stats.watchdog_trips, h.plant.steps, h.tx_dropped);
    if (with_plant) {
        fprintf(stderr, "robopg-fw-host: plant line: %lu timeouts, %lu bad answers, %lu dropped\n",
                (unsigned long)plant.timeouts, (unsigned long)plant.bad_answers, h.plant_dropped);
        close(plant_slave);
        close(h.plant_fd);
    }
    close(slave);
    close(h.fd);
    return 0;
}
