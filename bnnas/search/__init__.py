"""Subnet search under a cost budget: evolutionary (the paper's), exact (multiple-choice knapsack), random."""

from bnnas.search.common import SearchResult, check_budget, num_choices, sample_under_budget
from bnnas.search.evolution import EvolutionConfig, evolutionary_search
from bnnas.search.exact import exact_search
from bnnas.search.random_search import random_search

__all__ = ["EvolutionConfig", "SearchResult", "check_budget", "evolutionary_search", "exact_search", "num_choices",
           "random_search", "sample_under_budget"]
