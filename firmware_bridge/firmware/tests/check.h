/* check.h - a few assertion macros for the C unit tests: failures are counted and reported, the test goes on. */
#ifndef FB_CHECK_H
#define FB_CHECK_H

#include <stdio.h>

extern int check_failures;
extern int check_count;

#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        ++check_count;                                                                                  \
        if (!(cond)) {                                                                                  \
            ++check_failures;                                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                    \
        }                                                                                               \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                            \
    do {                                                                                                \
        ++check_count;                                                                                  \
        if (!(cond)) {                                                                                  \
            ++check_failures;                                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                    \
            fprintf(stderr, __VA_ARGS__);                                                               \
            fputc('\n', stderr);                                                                        \
        }                                                                                               \
    } while (0)

#define CHECK_EQ_U(a, b)                                                                                \
    CHECK_MSG((unsigned long)(a) == (unsigned long)(b), "%lu != %lu", (unsigned long)(a), (unsigned long)(b))

#endif /* FB_CHECK_H */
