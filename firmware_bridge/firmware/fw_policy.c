/* fw_policy.c - the exported policy as the HAL's policy. See fw_policy.h. */
#include "fw_policy.h"

#include "robopg_policy.h"

const uint8_t fw_policy_obs_dim = ROBOPG_POLICY_OBS_DIM;
const uint8_t fw_policy_action_dim = ROBOPG_POLICY_ACTION_DIM;

static void run_policy(void *ctx, const float *obs, float *action)
{
    (void)ctx;
    robopg_policy(obs, action);
}

int fw_policy_attach(fw_config *cfg, fw_hal *hal)
{
    if (cfg->obs_dim != ROBOPG_POLICY_OBS_DIM || cfg->action_dim != ROBOPG_POLICY_ACTION_DIM) {
        return -1;
    }
    cfg->capabilities = (uint8_t)(cfg->capabilities & ~FB_CAP_LOCKSTEP);
    hal->policy = run_policy;
    return 0;
}
