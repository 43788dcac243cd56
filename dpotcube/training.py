"""The one training loop of every model (density models and fields): jitted calls, progress with ETA, loss
history, optional early stopping on a validation metric, and a clear stop on a non-finite loss."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import TrainingError
from .progress import progress_bar

RunCall = Callable[[Any, Any, Any], tuple[Any, Any, dict[str, Any]]]
"""`(params, opt_state, key) -> (params, opt_state, metrics)`: one jitted call (an epoch, or a scan of steps)."""


@dataclass(frozen=True)
class EarlyStopping:
    """Stop after `patience` calls without a new minimum of `metric`; keep the parameters at the minimum."""

    metric: str
    patience: int


def train_loop(
    run_call: RunCall,
    params: Any,
    opt_state: Any,
    keys: Sequence[Any],
    label: str,
    units_per_call: int = 1,
    status: Callable[[dict[str, float], Any], str] | None = None,
    early_stopping: EarlyStopping | None = None,
    fix: str = "the learning rate",
    finish_on_non_finite: bool = False,
) -> tuple[Any, dict[str, list[float]]]:
    """Run `run_call` once per key; return the parameters (the best ones with early stopping) and the history of
    every metric (one value per call).

    `status(metrics, params)` writes the progress bar's status; `fix` names what to change when a metric turns
    non-finite (the recipe key, e.g. "`fields.learning_rate`"). With `finish_on_non_finite` (a polish that may
    step past its minimum) a non-finite metric ends the loop instead, keeping the last finite parameters.
    """
    history: dict[str, list[float]] = {}
    best_params, best, stale = params, math.inf, 0
    with progress_bar() as bar:
        task = bar.add_task(label, total=len(keys) * units_per_call, status="")
        for call, key in enumerate(keys):
            new_params, new_state, metrics = run_call(params, opt_state, key)
            values = {name: float(value) for name, value in metrics.items()}
            bad = [name for name, value in values.items() if not math.isfinite(value)]
            if bad and finish_on_non_finite:
                break
            params, opt_state = new_params, new_state
            for name, value in values.items():
                history.setdefault(name, []).append(value)
            if bad:
                raise TrainingError(
                    f"{label}: the {', '.join(bad)} became {values[bad[0]]} at step {(call + 1) * units_per_call} of "
                    f"{len(keys) * units_per_call}; the training diverged. Lower {fix} (or check the input data for "
                    "outliers); finished stages are kept, so a rebuild resumes here."
                )
            bar.update(task, advance=units_per_call, status=status(values, params) if status else "")
            if early_stopping is None:
                continue
            if values[early_stopping.metric] < best:
                best_params, best, stale = params, values[early_stopping.metric], 0
            else:
                stale += 1
            if stale >= early_stopping.patience:
                bar.update(task, status=f"early stop, best {early_stopping.metric} {best:.4f}")
                break
    return (params if early_stopping is None else best_params), history


def train_by_epochs(
    run_epoch: RunCall, params: Any, opt_state: Any, keys: Sequence[Any], label: str, patience: int, loss_name: str
) -> tuple[Any, dict[str, list[float]]]:
    """A density model's training: one `run_epoch` per key (metrics `train` and `val`), the best parameters on
    `val` kept, stopping after `patience` epochs without a new minimum; a non-finite loss names the flow's
    learning rate."""
    return train_loop(
        run_epoch, params, opt_state, keys, label,
        status=lambda metrics, _: f"{loss_name} {metrics['val']:.4f}",
        early_stopping=EarlyStopping("val", patience), fix="the flow's `learning_rate`",
    )
