"""The typed records a search run passes between its steps and to its report (``bnnas search``): the command line is
read once, in :func:`bnnas.cli.search.run`, and nothing past it sees the argparse namespace."""

from __future__ import annotations

from dataclasses import dataclass

from bnnas.core.arch import Arch
from bnnas.core.flops import CostTable
from bnnas.core.space import SearchSpace
from bnnas.indicators.bn import ScoreTable
from bnnas.search import EvolutionConfig, SearchResult, check_budget
from bnnas.trust.verdicts.evidence import LearningCheck


@dataclass(frozen=True)
class Budget:
    """What a search may spend: ``limit`` in the cost table's own unit, shown to the user in ``unit``."""

    cost: CostTable
    limit: float  # FLOPs or seconds, the table's unit
    unit: str  # "MFLOPs" or "ms"
    scale: float  # table units per shown unit: 1e6 FLOPs per MFLOP, 1e-3 s per ms

    @property
    def shown(self) -> float:
        """The limit in ``unit``, as the user gave it."""
        return self.limit / self.scale

    @property
    def by_latency(self) -> bool:
        """True for a measured latency budget (whose table has timing noise), False for FLOPs."""
        return self.unit == "ms"

    def check(self) -> None:
        """One readable error if no subnet fits (before any training is spent on a search that cannot run)."""
        check_budget(self.cost, self.limit, self.unit, self.scale)


@dataclass(frozen=True)
class SearchSettings:
    """What the command line asked the search, its arch record and its report for."""

    methods: tuple[str, ...]  # the arch comes from the first that runs
    indicator: str
    evolution: EvolutionConfig
    samples: int  # random search
    seed: int
    recipe: str
    limit_train: int | None
    eb_threshold: float  # the op ranking counts as settled at this similarity of consecutive epochs ...
    eb_patience: int  # ... held this many times


@dataclass(frozen=True)
class SearchOutcome:
    """What a finished search produced: everything its report writes."""

    space: SearchSpace
    arch: Arch
    bn_table: ScoreTable
    train_info: dict  # where the supernet came from, its history, config, seconds, early stop
    results: dict[str, SearchResult]
    budget: Budget
    evidence: LearningCheck
    tag: str  # names the result's files (``result_tag``)
    indicator_seconds: float
    total_seconds: float
