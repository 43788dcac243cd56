"""The one training loop: history, early stopping with the best parameters kept, and a readable divergence error."""

import jax.numpy as jnp
import jax.random as jr
import pytest

from dpotcube.errors import TrainingError
from dpotcube.training import EarlyStopping, train_loop


def test_early_stopping_keeps_the_best_params_and_records_every_metric():
    """A metric that falls for 3 calls then rises: stop after `patience` more, keep the params of call 3."""
    values = [5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 1.0]

    def run_call(params, opt_state, key):
        return params + 1, opt_state, {"val": jnp.asarray(values[params]), "train": params * 1.0}

    best, history = train_loop(run_call, 0, None, jr.split(jr.key(0), len(values)), "toy",
                               early_stopping=EarlyStopping("val", 2))
    assert best == 3  # params after the call that gave val = 3.0
    assert history["val"] == pytest.approx(values[:5]) and history["train"] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_without_early_stopping_every_call_runs_and_the_last_params_are_kept():
    params, history = train_loop(lambda p, s, k: (p + 1, s, {"loss": 1.0 / (p + 1)}), 0, None, jr.split(jr.key(0), 4),
                                 "toy", units_per_call=50)
    assert params == 4 and len(history["loss"]) == 4


def test_a_non_finite_metric_stops_with_the_label_the_step_and_the_key():
    def run_call(params, opt_state, key):
        return params + 1, opt_state, {"loss": jnp.where(params >= 2, jnp.nan, 1.0)}

    with pytest.raises(TrainingError) as err:
        train_loop(run_call, 0, None, jr.split(jr.key(0), 5), "fields Φ", units_per_call=50, fix="`fields.learning_rate`")
    message = str(err.value)
    assert "fields Φ" in message and "step 150" in message and "`fields.learning_rate`" in message and "nan" in message
