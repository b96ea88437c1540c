"""Training: one shared loop (trainer.py) under the supernet trainer (BN-only or all parameters), subnet retraining
and the short proxy schedule, with the LR rule, optimizer, schedule, BN-statistics and distributed helpers."""
