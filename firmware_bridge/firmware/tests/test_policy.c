/*
 * test_policy.c - a policy written by `robopg export --format c` against onnxruntime's actions on the
 * export's verification observations (robopg_policy_check.h), on the host or on the board.
 *
 *     cc -std=c99 -I POLICY_DIR tests/test_policy.c POLICY_DIR/robopg_policy.c -lm
 *
 * Prints the largest difference in units of the half action range and exits 1 above the export's tolerance.
 * Built with -DTEST_POLICY_CLOCK=f, where `uint32_t f(void)` is a free-running counter, it also prints the
 * counter's ticks per inference (the board's port gives its 25 MHz counter: under QEMU's -icount shift=0 one
 * instruction is 1 ns, so a tick is 40 instructions).
 */
#include <stdint.h>
#include <stdio.h>

#include "robopg_policy.h"
#include "robopg_policy_check.h"

#ifdef TEST_POLICY_CLOCK
uint32_t TEST_POLICY_CLOCK(void);
#define TIMED_RUNS 200u
#endif

int main(void)
{
    float action[ROBOPG_POLICY_ACTION_DIM];
    double worst = 0.0;
    unsigned n, i;
    for (n = 0; n < ROBOPG_CHECK_COUNT; ++n) {
        robopg_policy(check_obs[n], action);
        for (i = 0; i < ROBOPG_POLICY_ACTION_DIM; ++i) {
            double d = ((double)action[i] - (double)check_action[n][i]) / (double)check_half_range[i];
            d = d < 0 ? -d : d;
            if (!(d <= worst)) { /* NaN counts as the worst */
                worst = d != d ? 1e30 : d;
            }
        }
    }
    printf("test_policy: %u observations, largest difference %.3g of the action range (limit %.3g), hidden [%s]\n",
           (unsigned)ROBOPG_CHECK_COUNT, worst, (double)ROBOPG_CHECK_TOLERANCE, ROBOPG_POLICY_HIDDEN);
#ifdef TEST_POLICY_CLOCK
    {
        uint32_t start = TEST_POLICY_CLOCK(), ticks;
        for (n = 0; n < TIMED_RUNS; ++n) {
            robopg_policy(check_obs[n % ROBOPG_CHECK_COUNT], action);
        }
        ticks = TEST_POLICY_CLOCK() - start;
        printf("test_policy: %lu clock ticks per inference (x1000)\n", (unsigned long)(1000.0 * ticks / TIMED_RUNS));
    }
#endif
    return worst <= ROBOPG_CHECK_TOLERANCE ? 0 : 1;
}
