"""What tests/test_distribute.py runs in a fresh Python, where XLA_FLAGS (simulated CPU
devices) and KERAS_BACKEND=jax are set before JAX starts. Prints one JSON line last.

python tests/distributed_worker.py step LOSS[,LOSS] DEVICES...  one step's figures per count
python tests/distributed_worker.py pretrain DEVICES CACHE [COORDINATOR PROCESSES ID]
python tests/distributed_worker.py time DEVICES STEPS [WIDTH]  seconds a pretraining step
python tests/distributed_worker.py refusals FOLDER [ARGS...]  `simclr-lab compare` refusing
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np


def _config(loss="ntxent", devices=1, **changes):
    from simclr_lab.runs.presets import get_preset

    # Small and quick to compile; BatchNorm in the head, so its statistics are compared too.
    return get_preset(
        "smoke",
        **{
            "model.width": 32,
            "model.projection_batchnorm": True,
            "pretrain.loss": loss,
            "pretrain.batch_size": 64,
            "pretrain.labelled_per_step": 8,
            "data.num_unlabelled": 168,  # 3 steps of 56 + 8
            "distribute.devices": devices,
            **changes,
        },
    )


def _batch(config, splits):
    from simclr_lab.runs.train import pretraining_plan
    from simclr_lab.sources.batching import PairedStream

    stream = PairedStream(
        splits.unlabelled,
        splits.labelled_images,
        splits.labelled_labels,
        pretraining_plan(config, splits),
        seed=config.seed,
    )
    return stream[0]


def _one_step(config, splits, batch):
    """Loss, contrastive accuracy, gradients and BatchNorm statistics of one training step
    on the devices `config.distribute` asks for, as `fit` computes them (jit, the batch
    split over the devices); and the loss a per-device computation would give."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from simclr_lab.loss import contrastive_accuracy, get_loss
    from simclr_lab.runs.distribute import over_devices
    from simclr_lab.runs.train import build_contrastive_model, pretraining_plan

    plan = pretraining_plan(config, splits)
    parts = (plan.unlabelled_per_step, plan.labelled_per_step)
    with over_devices(config, pretraining=parts) as where:
        model = build_contrastive_model(config, splits, plan.steps)
        (unlabelled, labelled), labels = batch
        if where.distribution is None:
            put = jax.device_put
        else:
            mesh = where.distribution.device_mesh.backend_mesh
            split = NamedSharding(mesh, PartitionSpec("batch"))

            def put(array):
                return jax.make_array_from_process_local_data(split, array)

        x, y = (put(unlabelled), put(labelled)), put(labels)
        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]
        metrics = [v.value for v in model.metrics_variables]
        model.optimizer.build(model.trainable_variables)
        optimizer = [v.value for v in model.optimizer.variables]
        grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)

        @jax.jit
        def step(trainable, frozen, metrics, optimizer, x, y):
            (_, (_, y_pred, frozen, metrics)), grads = grad_fn(
                trainable, frozen, metrics, x, y, None, True, optimizer
            )
            return y_pred, frozen, metrics, grads

        start = time.perf_counter()
        y_pred, frozen, metrics, grads = step(trainable, frozen, metrics, optimizer, x, y)
        jax.block_until_ready(grads)
        seconds = time.perf_counter() - start
        tracked = dict(zip([v.path for v in model.metrics_variables], metrics))
        out = {
            name: float(tracked[f"{name}/total"] / tracked[f"{name}/count"])
            for name in ("c_loss", "c_acc")
        }
        # In the models' order (their names count up as models are built in one process).
        out["grads"] = [np.asarray(g).tolist() for g in grads]
        out["batchnorm"] = [
            np.asarray(value).tolist()
            for v, value in zip(model.non_trainable_variables, frozen)
            if "moving" in v.path
        ]
        out["initial"] = float(sum(np.abs(np.asarray(w)).sum() for w in trainable))
        out["first_call_s"] = seconds
        if where.distribution is not None:  # the bug: each device its own loss, averaged
            loss_fn, temperature = get_loss(config.pretrain.loss), model.temperature
            by_device = PartitionSpec("batch")

            def own_negatives(p1, p2):
                loss, similarities = loss_fn(p1, p2, temperature)
                accuracy = contrastive_accuracy(similarities)
                return jax.lax.pmean(loss, "batch"), jax.lax.pmean(accuracy, "batch")

            per_device = jax.jit(
                jax.shard_map(
                    own_negatives,
                    mesh=mesh,
                    in_specs=(by_device, by_device),
                    out_specs=(PartitionSpec(), PartitionSpec()),
                )
            )
            p1 = jax.device_put(y_pred["projections_1"].astype("float32"), split)
            p2 = jax.device_put(y_pred["projections_2"].astype("float32"), split)
            bug_loss, bug_acc = per_device(p1, p2)
            out["per_device_c_loss"], out["per_device_c_acc"] = float(bug_loss), float(bug_acc)
    return out


def step(losses, *counts):
    """{loss: {count: one step's figures}} for each loss, on one device and on each count."""
    from simclr_lab.sources.data import load_splits

    results = {}
    for loss in losses.split(","):
        config = _config(loss)
        splits = load_splits(config.data)
        batch = _batch(config, splits)
        results[loss] = {
            count: _one_step(_config(loss, int(count)), splits, batch) for count in ("1", *counts)
        }
    return results


def pretrain(devices, cache, coordinator=None, processes=None, process_id=None):
    """Pretraining for one epoch of 3 steps through `train.pretrain`, on `devices`, in one
    of several processes when a coordinator is given."""
    from simclr_lab.runs import distribute

    if coordinator:
        distribute.initialize(coordinator, int(processes), int(process_id))
    import keras

    from simclr_lab.faces.dashboard import LiveDashboard
    from simclr_lab.runs import train
    from simclr_lab.sources.data import load_splits

    config = _config(devices=devices if devices == "all" else int(devices))
    config = config.replace(**{"pretrain.epochs": 1, "data.num_test": 100})
    splits = load_splits(config.data)
    steps = {"c_loss": [], "c_acc": []}  # the epoch's running means after each step

    def record(batch, logs):
        for name, values in steps.items():
            values.append(float(logs[name]))

    dashboard = LiveDashboard(batch_size=config.pretrain.batch_size, show=False)
    start = time.perf_counter()
    result = train.pretrain(
        config,
        splits,
        cache,
        callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=record), dashboard],
        verbose=0,
    )
    return {
        "seconds": time.perf_counter() - start,
        "steps": steps,
        "history": result.history,
        "weights": [np.asarray(w).ravel().tolist() for w in result.model.get_weights()],
        "spread": distribute.spread(config).describe(config.pretrain.batch_size),
        "dashboard": dashboard._status_html(dashboard.rows[-1]),
    }


def time_steps(devices, steps, width="32"):
    """Median seconds of a compiled pretraining step (batch 64 of 32x32 images), `fit`'s
    own train function on `devices`."""
    import keras

    from simclr_lab.runs.distribute import active, over_devices
    from simclr_lab.runs.train import build_contrastive_model, pretraining_plan
    from simclr_lab.sources.batching import PairedStream
    from simclr_lab.sources.data import load_splits

    changes = {"data.num_unlabelled": 56 * (int(steps) + 2), "model.width": int(width)}
    config = _config(devices=int(devices), **changes)
    splits = load_splits(config.data)
    plan = pretraining_plan(config, splits)
    stream = PairedStream(splits.unlabelled, splits.labelled_images, splits.labelled_labels, plan)
    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["c_loss"])  # waits for the step
            times.append(time.perf_counter() - self.start)

    with over_devices(config, pretraining=(plan.unlabelled_per_step, plan.labelled_per_step)):
        model = build_contrastive_model(config, splits, plan.steps)
        model.fit(
            active().local(stream),
            epochs=1,
            steps_per_epoch=plan.steps,
            verbose=0,
            callbacks=[Clock()],
        )
    return {"median_s": float(np.median(times[2:])), "steps": len(times) - 2}


def refusals(folder, *cases):
    """`simclr-lab compare --preset smoke` with each case's extra arguments ("|"-separated):
    its exit status, what it printed to stderr and whether the cache saw any run."""
    from simclr_lab.faces import cli

    found = []
    for number, case in enumerate(cases):
        cache = Path(folder) / f"cache-{number}"
        error = io.StringIO()
        arguments = ["compare", "--preset", "smoke", "--quiet", "--cache-dir", str(cache)]
        arguments += ["--out", str(Path(folder) / f"out-{number}"), *case.split("|")]
        with contextlib.redirect_stderr(error), contextlib.redirect_stdout(io.StringIO()):
            status = cli.main(arguments)
        trained = cache.is_dir() and any(cache.iterdir())
        found.append({"status": status, "error": error.getvalue().strip(), "trained": trained})
    return found


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    commands = {"step": step, "pretrain": pretrain, "time": time_steps, "refusals": refusals}
    result = commands[command](*args)
    print(json.dumps(result))
