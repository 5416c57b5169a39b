"""Cart-pole balance: the swing-up's cart, pole, reward and termination, starting upright.

DeepMind Control's ``cartpole`` pairs the two the same way: balancing needs no swing to be discovered,
so it is the task for methods too weak for the swing-up (DPG with a compatible linear critic). An
episode is 250 steps; a pole held still and centred earns nearly 1 per step.
"""

from __future__ import annotations

from dataclasses import replace

from sim.tasks import cartpole

ENV_ID = "robopg/CartPoleBalance-v0"
ENTRY_POINT = "sim.envs.cartpole:CartPoleBalanceEnv"

SPEC = replace(cartpole.SPEC, env_id=ENV_ID, solved_return=200.0)
