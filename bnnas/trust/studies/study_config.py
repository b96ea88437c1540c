"""What a study runs with: the supernets its indicators read (their specs) and the study's settings. It sits below
every module that reads it (the studies, their supernets and indicator scoring), so none of them imports another
for its config."""

from __future__ import annotations

from dataclasses import dataclass, field

from bnnas.training.proxy import ProxyConfig
from bnnas.trust.rank_stats import BOOTSTRAP_RESAMPLES

# BN-only (--bn-params BNs train), BN-only with every BN training, all-parameters, untrained (zero-cost proxies)
SUPERNETS = ("bn", "bnall", "all", "init")


@dataclass
class SupernetSpec:
    mode: str  # bn | all
    epochs: int
    batch_size: int = 32
    lr: float | None = None
    bn_params: str = "last"
    sampler: str = "spos"
    seed: int = 0
    checkpoint: str | None = None  # reuse instead of training
    workers: int = 0
    gamma_init: float = 1.0  # residual candidates' indicator-BN gamma at init (1: paper; 0: small-data recipe)


DEFAULT_INDICATORS = ("bn@bn", "bn@bnall", "bn@all", "spos-acc@all", "naswot@init", "synflow@init", "flops")


@dataclass
class StudyConfig:
    k: int = 8
    seed: int = 0
    indicators: tuple[str, ...] = DEFAULT_INDICATORS
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    bn: SupernetSpec = field(default_factory=lambda: SupernetSpec("bn", 10))
    bnall: SupernetSpec = field(default_factory=lambda: SupernetSpec("bn", 10, bn_params="all"))
    all: SupernetSpec = field(default_factory=lambda: SupernetSpec("all", 10))
    max_flops: float | None = None
    search_samples: int = 1000  # subnets an indicator-driven search scores (the paper's EA: ~1000)
    spos_calib_batches: int = 10
    spos_max_eval: int | None = None
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES
