/*
 * fw_policy.h - POLICY mode (hal.h): the policy `robopg export --format c` wrote (robopg_policy.c) as the HAL's
 * policy. Compiled only into a POLICY build (-DFW_POLICY), with -I the export's folder; the port and the host
 * build call it after they know their plant and before fw_core_init().
 */
#ifndef FW_POLICY_H
#define FW_POLICY_H

#include "fw_core.h"
#include "hal.h"

/* The policy's observation and action sizes (ROBOPG_POLICY_*), for a caller that says why it refuses. */
extern const uint8_t fw_policy_obs_dim;
extern const uint8_t fw_policy_action_dim;

/* When cfg's sizes are the policy's: hal->policy = the exported policy, LOCKSTEP dropped from cfg (a firmware that
 * runs the policy acts at its own ticks), 0. Otherwise -1, and nothing changed. */
int fw_policy_attach(fw_config *cfg, fw_hal *hal);

#endif /* FW_POLICY_H */
