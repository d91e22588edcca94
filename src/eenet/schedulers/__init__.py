"""Exit schedulers: policies that decide, per sample, at which exit a multi-exit network stops.

Every policy follows one small scikit-learn-like interface::

    sched = make_scheduler("eenet", **params).fit(val_probs, val_labels, costs, budget)
    exits = sched.assign(test_probs)            # int64 [N], the exit index of every sample
    sched2 = scheduler_from_json(sched.to_json())
    combined = make_scheduler("ztw_ens+maxpred")    # an exit combiner, then a policy: one policy (compose.py)

One module per policy family; a policy is a subclass of :class:`ExitScheduler` decorated with
:func:`register_method`. Adding one is adding a module here and importing it below.
"""

from eenet.schedulers import calibrated, compose, deferral, eenet, eero, guarantee, oracle, patience, search, shared, static, threshold
from eenet.schedulers.base import (
    FORMAT_VERSION,
    METHODS,
    ExitScheduler,
    InfeasibleBudgetError,
    accuracy,
    assign_by_thresholds,
    exit_predictions,
    realised_cost,
    register_method,
    thresholds_for_distribution,
)
from eenet.schedulers.calibrated import EntropyTSScheduler, MaxPredTSScheduler
from eenet.schedulers.compose import (
    CombinedPolicy,
    accepted_params,
    effective_costs,
    fit_budgets,
    fit_policy,
    make_scheduler,
    scheduler_from_json,
)
from eenet.schedulers.deferral import DeferralScheduler
from eenet.schedulers.eenet import EENetScheduler
from eenet.schedulers.eero import EEROScheduler
from eenet.schedulers.guarantee import EntropyGuardScheduler, EntropyTSGuardScheduler, MaxPredGuardScheduler, MaxPredTSGuardScheduler
from eenet.schedulers.oracle import OracleScheduler
from eenet.schedulers.patience import PatienceScheduler
from eenet.schedulers.search import EntropyOptScheduler, MaxPredOptScheduler
from eenet.schedulers.shared import SharedThresholdScheduler
from eenet.schedulers.static import StaticScheduler
from eenet.schedulers.threshold import EntropyScheduler, GeometricScheduler, MaxPredScheduler

__all__ = [
    "FORMAT_VERSION",
    "METHODS",
    "ExitScheduler",
    "InfeasibleBudgetError",
    "CombinedPolicy",
    "effective_costs",
    "fit_budgets",
    "fit_policy",
    "GeometricScheduler",
    "MaxPredScheduler",
    "EntropyScheduler",
    "EENetScheduler",
    "MaxPredTSScheduler",
    "EntropyTSScheduler",
    "MaxPredOptScheduler",
    "EntropyOptScheduler",
    "SharedThresholdScheduler",
    "PatienceScheduler",
    "DeferralScheduler",
    "EEROScheduler",
    "MaxPredGuardScheduler",
    "EntropyGuardScheduler",
    "MaxPredTSGuardScheduler",
    "EntropyTSGuardScheduler",
    "OracleScheduler",
    "StaticScheduler",
    "accepted_params",
    "accuracy",
    "assign_by_thresholds",
    "exit_predictions",
    "make_scheduler",
    "realised_cost",
    "register_method",
    "scheduler_from_json",
    "thresholds_for_distribution",
    "calibrated",
    "compose",
    "deferral",
    "eenet",
    "eero",
    "guarantee",
    "oracle",
    "patience",
    "search",
    "shared",
    "static",
    "threshold",
]
