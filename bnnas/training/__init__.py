"""Training: the supernet trainer (BN-only or all parameters), subnet retraining and the short proxy schedule,
with optimizer, LR schedule, precision and distributed helpers."""
