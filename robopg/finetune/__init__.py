"""Fine-tuning on the robot: a session that explores with a registered fine-tuning learner
(``robopg/algos/cautious_a2c.py``), evaluates without noise, and decides what is kept.

``session``: the episode loop and its record; ``decide``: the significance test, rollback and saving.
"""

from robopg.finetune.decide import clearly_better
from robopg.finetune.session import FinetuneConfig, FinetuneRecord, FinetuneResult, finetune, finetune_configs

__all__ = ["FinetuneConfig", "FinetuneRecord", "FinetuneResult", "clearly_better", "finetune", "finetune_configs"]
