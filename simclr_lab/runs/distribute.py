"""Data-parallel training over several devices and processes, on Keras' distribution API.

With `distribute.devices` above 1 (or "all") every phase is built and trained under a
`keras.distribution.DataParallel` on the JAX backend: the weights are replicated on each
device, every training batch is split evenly over them along its first axis, and XLA compiles
one program for the whole global batch. The loss, the contrastive accuracy and BatchNorm are
written as for one device (`ops.matmul` of all projections, `ops.mean` over the batch axis),
so they see every image of the global batch: the partitioner adds the all-gathers and
all-reduces itself. No collective is written by hand, and no device ever computes a loss from
its own images alone (the classic bug: each device with only its own negatives).

A config's batch sizes are global batches: a step of 500 + 25 images on 5 devices puts
100 + 5 on each, and an epoch keeps its steps, so the results are those of one device up to
rounding (the order of floating-point sums). Validation batches are not split: every device
evaluates the whole test batch, and the validation figures are exactly one device's.

Several processes (several machines): `initialize` joins them (Keras'
`keras.distribution.initialize`) before anything asks JAX for its devices; each process then
reads only its own rows of every training batch (`Spread.local`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from dataclasses import dataclass

import keras

from simclr_lab.config import Config, DistributeConfig

JOB_ADDRESSES_VAR = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_VAR = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_VAR = "KERAS_DISTRIBUTION_PROCESS_ID"
SIMULATE_HINT = (
    "on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N set before Python starts "
    "simulates N devices"
)


class DistributionError(ValueError):
    """Data-parallel training asked for where it cannot run, or a batch that cannot be split."""


def _mesh_devices() -> list:
    """Every device JAX sees, in all processes, each process's together and in order: so
    process p of P holds the p-th of P equal slices of every batch, as its rows are read."""
    import jax

    return sorted(jax.devices(), key=lambda device: (device.process_index, device.id))


def visible_devices() -> list[str]:
    """'gpu:0', 'gpu:1', ... (or 'cpu:0', ...): the devices data-parallel training can use,
    in every process; empty on a backend other than JAX."""
    if keras.backend.backend() != "jax":
        return []
    return [f"{device.platform}:{device.id}" for device in _mesh_devices()]


def device_count(settings: DistributeConfig) -> int:
    """How many devices `settings.devices` asks for, checked against those JAX sees.

    1 needs nothing; anything else needs the JAX backend and that many devices (all of them
    when there are several processes).
    """
    if settings.devices == 1:
        return 1
    backend = keras.backend.backend()
    if backend != "jax":
        why = (
            " (Keras' distribution API is a prototype on TensorFlow, and under tf.distribute "
            "Keras runs the train step once per replica: each device's loss would see only "
            "its own negatives.)"
            if backend == "tensorflow"
            else ""
        )
        raise DistributionError(
            f"distribute.devices={settings.devices!r} asks for data-parallel training, which "
            f"simclr-lab runs on the JAX backend only; this is the {backend} backend. Start "
            f"again with KERAS_BACKEND=jax (pip install 'jax[cpu]', or jax[cuda12] for "
            f"GPUs), or use distribute.devices=1.{why}"
        )
    import jax

    visible = visible_devices()
    if settings.devices == "all":
        return len(visible)
    if settings.devices > len(visible):
        raise DistributionError(
            f"distribute.devices={settings.devices} but JAX sees {len(visible)} device"
            f"{'s' if len(visible) != 1 else ''} ({', '.join(visible)}); ask for at most "
            f"{len(visible)}, or 'all' ({SIMULATE_HINT})."
        )
    if jax.process_count() > 1 and settings.devices != len(visible):
        raise DistributionError(
            f"distribute.devices={settings.devices} with {jax.process_count()} processes: "
            f"several processes train on all {len(visible)} devices together; use 'all'."
        )
    return settings.devices


def _doubled_hint(config: Config, devices: int) -> str:
    settings = config.pretrain
    hint = f"--set pretrain.batch_size={settings.batch_size * devices}"
    if settings.labelled_per_step is not None:
        hint += f" --set pretrain.labelled_per_step={settings.labelled_per_step * devices}"
    return hint


def check_batches(
    config: Config,
    devices: int,
    pretraining: tuple[int, int] | None = None,
    supervised: int | None = None,
) -> None:
    """Refuse, before any training, a global batch that does not split evenly over `devices`.

    pretraining: (unlabelled, labelled) images a step; supervised: the baseline's and the
    finetuning's batch. Each part is split on its own, so each must be a multiple of devices.
    """
    if devices == 1:
        return
    if pretraining is not None and any(part % devices for part in pretraining):
        unlabelled, labelled = pretraining
        raise DistributionError(
            f"pretrain.batch_size={config.pretrain.batch_size} is {unlabelled} unlabelled + "
            f"{labelled} labelled images a step, which do not split evenly over {devices} "
            f"devices: each part must be a multiple of {devices}. For one device's step on "
            f"each, make the batch {devices} times as large: {_doubled_hint(config, devices)}."
        )
    if supervised is not None and supervised % devices:
        named = (
            "supervised.batch_size"
            if config.supervised.batch_size is not None
            else "the supervised batch (supervised.batch_size=None: the pretraining's labelled "
            "images a step)"
        )
        raise DistributionError(
            f"{named}={supervised} does not split evenly over {devices} devices; set "
            f"supervised.batch_size to a multiple of {devices}, e.g. "
            f"--set supervised.batch_size={math.ceil(supervised / devices) * devices}."
        )


class _GlobalBatch(keras.distribution.DataParallel):
    """DataParallel whose inputs are whole on every device while `whole_inputs` is set (for
    validation batches, which need not split evenly)."""

    whole_inputs = False

    def get_data_layout(self, data_shape):
        if self.whole_inputs:
            return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)
        return super().get_data_layout(data_shape)


@functools.cache
def _distribution(devices: int) -> _GlobalBatch:
    """One distribution per device count, so nested scopes and rebuilt models share a mesh."""
    chosen = [f"{device.platform}:{device.id}" for device in _mesh_devices()[:devices]]
    # Each process reads its own rows (`Spread.local`): Keras must not shard them again.
    return _GlobalBatch(devices=chosen, auto_shard_dataset=False)


class WholeValidationBatches(keras.callbacks.Callback):
    """Validation batches go whole to every device; training batches are split."""

    def __init__(self, distribution: _GlobalBatch):
        super().__init__()
        self.distribution = distribution

    def on_train_begin(self, logs=None):
        self.distribution.whole_inputs = False

    def on_test_begin(self, logs=None):
        self.distribution.whole_inputs = True

    def on_test_end(self, logs=None):
        self.distribution.whole_inputs = False


class ProcessRows(keras.utils.PyDataset):
    """This process's rows of every batch of `stream`: process `index` of `count` takes the
    index-th of `count` equal slices of each array (as the mesh puts its devices in order).
    Other attributes (steps_per_epoch, set_start_epoch, plan) are the stream's."""

    def __init__(self, stream, index: int, count: int):
        super().__init__()
        self.stream, self.index, self.count = stream, index, count

    def __len__(self):
        return len(self.stream)

    def __getitem__(self, position):
        def rows(array):
            share = len(array) // self.count
            return array[self.index * share : (self.index + 1) * share]

        return keras.tree.map_structure(rows, self.stream[position])

    def __getattr__(self, name):
        if name == "stream":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.stream, name)


@dataclass(frozen=True)
class Spread:
    """Where a phase trains: `devices` devices over `processes` processes (this one is
    `process_index`); `distribution` is None on one device."""

    devices: int = 1
    processes: int = 1
    process_index: int = 0
    distribution: _GlobalBatch | None = None

    def local(self, stream):
        """The training stream as this process reads it: all of it, or its rows."""
        if self.processes == 1:
            return stream
        return ProcessRows(stream, self.process_index, self.processes)

    @property
    def callbacks(self) -> list:
        return [] if self.distribution is None else [WholeValidationBatches(self.distribution)]

    def describe(self, global_batch: int | None = None) -> str:
        """'2 devices (cpu:0, cpu:1): global batch 128 = 64 per device x 2', or one device."""
        if self.distribution is None:
            return "1 device" + (f": batch {global_batch}" if global_batch else "")
        names = list(self.distribution.device_mesh.devices.flatten())
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        where = f"{self.devices} devices ({shown})"
        if self.processes > 1:
            where += f" in {self.processes} processes (this is process {self.process_index})"
        if not global_batch:
            return f"data-parallel on {where}"
        per_device = global_batch / self.devices
        even = per_device.is_integer()
        per_device = int(per_device) if even else round(per_device, 2)
        return (
            f"data-parallel on {where}: global batch {global_batch} = {per_device} per "
            f"device x {self.devices}{'' if even else ', which does not split evenly'}"
        )

    def describe_steps(self, pretraining: tuple[int, int], supervised: int) -> str:
        """The plan `compare` prints: each phase's global batch and what each device takes."""
        if self.distribution is None:
            return "1 device (distribute.devices=1)"
        unlabelled, labelled = pretraining
        share = self.devices
        return (
            f"{self.describe(unlabelled + labelled)} (a pretraining step: {unlabelled} + "
            f"{labelled}, "
            f"{unlabelled // share} + {labelled // share} per device); supervised batch "
            f"{supervised} = {supervised // share} per device x {share}"
        )


def _spread_of(distribution: _GlobalBatch) -> Spread:
    devices = int(distribution.device_mesh.devices.size)
    # data_shard_id: the process's own slice of each batch (the mesh holds each process's
    # devices together, in process order).
    return Spread(devices, distribution.num_processes, distribution.data_shard_id, distribution)


def spread(config: Config) -> Spread:
    """The devices `config.distribute` asks for (checked), without entering their scope."""
    devices = device_count(config.distribute)
    return Spread() if devices == 1 else _spread_of(_distribution(devices))


def checked(config: Config, pretraining=None, supervised=None) -> Spread:
    """`spread(config)`, with the global batches checked to split evenly (`check_batches`)."""
    where = spread(config)
    check_batches(config, where.devices, pretraining, supervised)
    return where


@contextlib.contextmanager
def over_devices(config: Config, pretraining=None, supervised=None):
    """Within: models are built and `fit` runs over the devices `config.distribute` asks for
    (nothing changes on one). Checks first (`checked`); yields the `Spread`."""
    where = checked(config, pretraining, supervised)
    if where.distribution is None:
        yield where
        return
    where.distribution.whole_inputs = False  # even after a validation that raised
    with where.distribution.scope():
        yield where


def active() -> Spread:
    """The Spread of the scope entered by `over_devices` (one device outside any)."""
    current = keras.distribution.distribution()
    return _spread_of(current) if isinstance(current, _GlobalBatch) else Spread()


JOIN_TIMEOUT = 300  # seconds the processes wait for each other before giving up


def _from_environment(coordinator, num_processes, process_id):
    """The three settings of `initialize`, each falling back on Keras' variable."""
    coordinator = coordinator or os.environ.get(JOB_ADDRESSES_VAR) or None
    if num_processes is None and os.environ.get(NUM_PROCESSES_VAR):
        num_processes = _whole(NUM_PROCESSES_VAR, os.environ[NUM_PROCESSES_VAR])
    if process_id is None and os.environ.get(PROCESS_ID_VAR):
        process_id = _whole(PROCESS_ID_VAR, os.environ[PROCESS_ID_VAR])
    return coordinator, num_processes, process_id


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    log=print,
    timeout: int = JOIN_TIMEOUT,
) -> bool:
    """Join a run of several processes (`keras.distribution.initialize`); call it first.

    Each argument falls back on Keras' variable (KERAS_DISTRIBUTION_JOB_ADDRESSES: process
    0's host:port, ..._NUM_PROCESSES, ..._PROCESS_ID). Without a coordinator there is one
    process: returns False. Must run before anything asks JAX for its devices. Says that it
    waits for the others, at most `timeout` seconds.
    """
    coordinator, num_processes, process_id = _from_environment(
        coordinator, num_processes, process_id
    )
    if coordinator is None:
        if num_processes not in (None, 1) or process_id not in (None, 0):
            raise DistributionError(
                f"num_processes={num_processes}, process_id={process_id} without a "
                f"coordinator: give process 0's host:port (--coordinator or "
                f"{JOB_ADDRESSES_VAR})."
            )
        return False
    if keras.backend.backend() != "jax":
        raise DistributionError(
            f"several processes (coordinator {coordinator!r}) need the JAX backend; this is "
            f"the {keras.backend.backend()} backend. Start again with KERAS_BACKEND=jax."
        )
    if num_processes is None or process_id is None:
        raise DistributionError(
            f"coordinator {coordinator!r} needs the number of processes and this process's "
            f"id (--processes and --process-id, or {NUM_PROCESSES_VAR} and {PROCESS_ID_VAR})."
        )
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise DistributionError(
            f"process_id={process_id} must be from 0 to num_processes - 1 "
            f"(num_processes={num_processes})."
        )
    import jax

    log(
        f"Process {process_id} of {num_processes}: joining the others at {coordinator} "
        f"(waiting up to {timeout} s for all {num_processes} to start; past that, JAX ends "
        f"this process with an error)."
    )
    try:  # what keras.distribution.initialize runs on JAX, with a time limit
        jax.distributed.initialize(
            coordinator, num_processes, process_id, initialization_timeout=timeout
        )
    except Exception as error:  # JAX raises RuntimeError, XlaRuntimeError, ...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DistributionError(
            f"could not join the {num_processes} processes at {coordinator!r} within "
            f"{timeout} s ({type(error).__name__}: {first_line[:200]}); start every process "
            f"(--process-id 0 to {num_processes - 1}) with the same --coordinator, before "
            f"anything asks JAX for its devices."
        ) from error
    return True


def _whole(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DistributionError(f"{name}={text!r} must be a whole number.") from None


def describe_visible() -> str:
    """One line for `simclr-lab info`: the devices data-parallel training could use."""
    backend = keras.backend.backend()
    if backend != "jax":
        return f"data-parallel training (--devices): needs KERAS_BACKEND=jax; this is {backend}"
    import jax

    visible = visible_devices()
    shown = ", ".join(visible[:8]) + (", ..." if len(visible) > 8 else "")
    processes = jax.process_count()
    return (
        f"devices: {len(visible)} ({shown}) in {processes} process"
        f"{'es' if processes > 1 else ''}; --devices all trains data-parallel over them"
    )
