/* footprint.c - print the RAM a port gives the core (struct fw_core) and its parts; used by `make size`. */
#include <stdio.h>

#include "../fw_core.h"

int main(void)
{
    printf("sizeof(fw_core) = %lu bytes (receiver %lu, transmit body %lu, transmit wire %lu)\n",
           (unsigned long)sizeof(fw_core), (unsigned long)sizeof(fb_rx), (unsigned long)FW_TX_BODY_MAX,
           (unsigned long)FW_TX_WIRE_MAX);
    printf("sizeof(fw_config) = %lu bytes\n", (unsigned long)sizeof(fw_config));
    return 0;
}
