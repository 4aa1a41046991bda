"""The three phases of the reference: supervised baseline, pretraining, finetuning.

Each phase is load-or-train: a finished run with the same settings is loaded from the cache
instead of retrained, an interrupted one resumes from its last finished epoch, and a loss
that turns NaN stops the run with advice instead of caching broken weights.
"""

from __future__ import annotations

import keras

from simclr_lab.augment import get_augmenter
from simclr_lab.config import DEFAULT_METHOD, AugmentConfig, Config
from simclr_lab.encoder import (
    get_classifier,
    get_encoder,
    get_linear_probe,
    get_predictor,
    get_projection_head,
)
from simclr_lab.model import OUTPUT_BATCHNORM_METHODS, ContrastiveModel, UnlabelledContrastiveModel
from simclr_lab.runs.cache import (
    RunDir,
    arrays_digest,
    default_cache_dir,
)
from simclr_lab.runs.devices import resolve_precision
from simclr_lab.runs.distribute import device_count, over_devices
from simclr_lab.runs.phases import Phase, PhaseResult, run_phase
from simclr_lab.sources.batching import (
    BatchPlan,
    EvalStream,
    LabelledStream,
    PairedStream,
    UnlabelledStream,
    one_pass_steps,
    plan_batches,
    plan_unlabelled_batches,
)
from simclr_lab.sources.splits import Splits

TEST_BATCH_SIZE = 525  # the reference batches the test split at 525


def precision(config: Config) -> str:
    """The Keras dtype policy the models are built in: `model.precision`, with "auto"
    decided for this machine."""
    return resolve_precision(config.model.precision)


def augmenter_for(settings: AugmentConfig) -> keras.Sequential:
    return get_augmenter(
        settings.min_area,
        settings.brightness,
        settings.jitter,
        settings.recipe,
        grayscale=settings.grayscale,
    )


def pretraining_plan(config: Config, splits: Splits) -> BatchPlan:
    if not splits.has_labels:  # every image of the batch unlabelled
        return plan_unlabelled_batches(len(splits.unlabelled), config.pretrain.batch_size)
    return plan_batches(
        len(splits.unlabelled),
        len(splits.labelled_labels),
        config.pretrain.batch_size,
        config.pretrain.labelled_per_step,
    )


def supervised_batch_size(config: Config, splits: Splits) -> int:
    """The configured batch size, or the pretraining's labelled images per step (25)."""
    return config.supervised.batch_size or pretraining_plan(config, splits).labelled_per_step


def learning_rate_schedule(config: Config, steps_per_epoch: int):
    """The pretraining learning rate: a constant, or cosine decay (after linear warm-up)."""
    settings = config.pretrain
    if settings.schedule == "constant":
        return settings.learning_rate
    total = settings.epochs * steps_per_epoch
    warmup = int(total * settings.warmup_fraction)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(settings.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total - warmup, warmup_target=settings.learning_rate, warmup_steps=warmup
    )


def _build_weights(model: keras.Model, example) -> None:
    """Create every weight of `model` by tracing it on symbolic inputs shaped like `example`
    (an array or a tuple of arrays). Nothing runs: no random state moves, and JAX compiles
    no eager operation (calling it on real images cost 2-4 s a model there)."""
    model(keras.tree.map_structure(lambda a: keras.KerasTensor(a.shape, a.dtype), example))


def build_contrastive_model(
    config: Config, splits: Splits, steps_per_epoch: int = 1, augmenters=None
):
    """A compiled, built `ContrastiveModel` for `config` (weights freshly initialised).

    augmenters: (contrastive, classification) to use instead of the configured ones.
    """
    keras.utils.set_random_seed(config.seed)
    width, settings = config.model.width, config.pretrain
    model = ContrastiveModel(
        encoder=get_encoder(width, splits.image_shape[0], precision(config)),
        projection_head=get_projection_head(
            width,
            config.model.projection_batchnorm,
            precision(config),
            output_batchnorm=settings.method in OUTPUT_BATCHNORM_METHODS,
        ),
        linear_probe=get_linear_probe(splits.num_classes),
        contrastive_augmenter=augmenters[0] if augmenters else augmenter_for(settings.augment),
        classification_augmenter=(
            augmenters[1] if augmenters else augmenter_for(config.supervised.augment)
        ),
        temperature=settings.temperature,
        learnable_temperature=settings.learnable_temperature,
        loss=settings.loss,
        method=settings.method,
        predictor=(
            get_predictor(width, precision(config)) if settings.method == "simsiam" else None
        ),
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate_schedule(config, steps_per_epoch)))
    sample = splits.labelled_images[:2]
    _build_weights(model, (splits.unlabelled[:2], sample))
    return model


def build_unlabelled_model(config: Config, splits: Splits, steps_per_epoch: int = 1):
    """A compiled, built `UnlabelledContrastiveModel` for `config`: pretraining without
    labels (no probe), weights freshly initialised."""
    keras.utils.set_random_seed(config.seed)
    width, settings = config.model.width, config.pretrain
    model = UnlabelledContrastiveModel(
        encoder=get_encoder(width, splits.image_shape[0], precision(config)),
        projection_head=get_projection_head(
            width,
            config.model.projection_batchnorm,
            precision(config),
            output_batchnorm=settings.method in OUTPUT_BATCHNORM_METHODS,
        ),
        contrastive_augmenter=augmenter_for(settings.augment),
        temperature=settings.temperature,
        learnable_temperature=settings.learnable_temperature,
        loss=settings.loss,
        method=settings.method,
        predictor=(
            get_predictor(width, precision(config)) if settings.method == "simsiam" else None
        ),
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate_schedule(config, steps_per_epoch)))
    _build_weights(model, splits.unlabelled[:2])
    return model


def build_classifier(config: Config, splits: Splits, encoder=None, name="baseline_model"):
    """A compiled, built classifier: weak augmenter, encoder (fresh if None), Dense head."""
    keras.utils.set_random_seed(config.seed)
    encoder = encoder or get_encoder(config.model.width, splits.image_shape[0], precision(config))
    model = get_classifier(
        augmenter_for(config.supervised.augment), encoder, splits.num_classes, name=name
    )
    model.compile(
        optimizer=keras.optimizers.Adam(config.supervised.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    _build_weights(model, splits.labelled_images[:2])
    return model


def _test_stream(splits: Splits) -> EvalStream:
    return EvalStream(splits.test_images, splits.test_labels, TEST_BATCH_SIZE)


def _data_key(splits: Splits, config: Config) -> dict:
    """The data a run saw (a hash of every image and label drawn, not only the settings),
    and over how many devices it was split: data-parallel runs differ beyond rounding (their
    BatchNorm statistics and summation order), so they are keyed apart; one device adds
    nothing, so keys from before stay valid."""
    devices = device_count(config.distribute)
    return {
        "data_fingerprint": splits.fingerprint,
        **({"devices": devices} if devices > 1 else {}),
    }


def pretraining_key(config: Config) -> dict:
    """What the pretrained encoder depends on: not the supervised runs' epochs, batch or
    learning rate, only their augmenter, which the online probe uses. The method is named
    only when it is not SimCLR, so runs cached before methods existed keep their keys."""
    key = config.key_dict("data", "model", "pretrain", "seed")
    if key["pretrain"]["method"] == DEFAULT_METHOD:
        del key["pretrain"]["method"]
    return {**key, "probe_augment": config.key_dict("supervised")["supervised"]["augment"]}


def pretraining_run(config: Config, splits: Splits, cache_dir=None) -> RunDir:
    """The cache folder of the (labelled) pretraining of `config` on `splits`."""
    key = {**pretraining_key(config), **_data_key(splits, config)}
    return RunDir(cache_dir or default_cache_dir(), "pretraining", key)


def pretrain(
    config: Config, splits: Splits, cache_dir=None, callbacks=(), verbose=2, log=print
) -> PhaseResult:
    """Contrastive pretraining with the online probe; returns a PhaseResult (ContrastiveModel).

    Splits without labels (a folder without class folders) train an
    `UnlabelledContrastiveModel`: the contrastive loss alone, no probe, no validation.
    """
    plan = pretraining_plan(config, splits)
    if not splits.has_labels:
        return _pretrain_unlabelled(config, splits, plan, cache_dir, callbacks, verbose, log)
    stream = PairedStream(
        splits.unlabelled,
        splits.labelled_images,
        splits.labelled_labels,
        plan,
        config.pretrain.epochs,
        config.seed,
    )
    run = pretraining_run(config, splits, cache_dir)
    with over_devices(config, pretraining=(plan.unlabelled_per_step, plan.labelled_per_step)):
        return run_phase(
            Phase(
                "pretraining",
                build_contrastive_model(config, splits, plan.steps),
                run,
                stream,
                _test_stream(splits),
                config.pretrain.epochs,
                config.seed,
                config.use_shipped,
            ),
            callbacks,
            verbose,
            log,
        )


def _pretrain_unlabelled(config, splits, plan, cache_dir, callbacks, verbose, log):
    stream = UnlabelledStream(splits.unlabelled, plan, config.pretrain.epochs, config.seed)
    with over_devices(config, pretraining=(plan.unlabelled_per_step, 0)):
        model = build_unlabelled_model(config, splits, plan.steps)
        key = {**pretraining_key(config), **_data_key(splits, config), "labels": False}
        if config.pretrain.method != DEFAULT_METHOD:  # before, such runs trained SimCLR
            key["method_applied"] = True
        return run_phase(
            Phase(
                "pretraining",
                model,
                RunDir(cache_dir or default_cache_dir(), "pretraining", key),
                stream,
                None,
                config.pretrain.epochs,
                config.seed,
                config.use_shipped,
            ),
            callbacks,
            verbose,
            log,
        )


def supervised_run(phase: str, config: Config, splits: Splits, extra_key=None, cache_dir=None):
    """(RunDir, steps an epoch or None for one pass) of a supervised phase ("baseline" or
    "finetuning", whose `extra_key` is `encoder_key`); nothing is built or trained."""
    key = {**config.key_dict("data", "model", "supervised", "seed"), **_data_key(splits, config)}
    steps = config.supervised.steps_per_epoch
    one_pass = one_pass_steps(len(splits.labelled_labels), supervised_batch_size(config, splits))
    if steps in (None, one_pass):
        del key["supervised"]["steps_per_epoch"]  # one pass: the key runs always had
        steps = None
    return RunDir(cache_dir or default_cache_dir(), phase, {**key, **(extra_key or {})}), steps


def encoder_key(weights) -> dict:
    """The finetuning's key part naming its starting encoder: a digest of its weights."""
    return {"encoder_weights": arrays_digest(weights)}


def _supervised(phase, config, splits, encoder, cache_dir, extra_key, **run_options):
    name = "finetuning_model" if encoder is not None else "baseline_model"
    run, steps = supervised_run(phase, config, splits, extra_key, cache_dir)
    batch_size = supervised_batch_size(config, splits)
    stream = LabelledStream(
        splits.labelled_images,
        splits.labelled_labels,
        batch_size,
        config.supervised.epochs,
        config.seed,
        steps_per_epoch=steps,
    )
    with over_devices(config, supervised=batch_size):
        return run_phase(
            Phase(
                phase,
                build_classifier(config, splits, encoder, name=name),
                run,
                stream,
                _test_stream(splits),
                config.supervised.epochs,
                config.seed,
                config.use_shipped,
            ),
            **run_options,
        )


def train_baseline(
    config: Config,
    splits: Splits,
    cache_dir=None,
    callbacks=(),
    verbose=2,
    log=print,
) -> PhaseResult:
    """The supervised baseline: weak augmenter + fresh encoder + Dense head, labels only.

    Its cache key holds the data's fingerprint, so labels drawn elsewhere (the sweep draws
    them from the unlabelled pool) get a run of their own.
    """
    return _supervised(
        "baseline",
        config,
        splits,
        None,
        cache_dir,
        {},
        callbacks=callbacks,
        verbose=verbose,
        log=log,
    )


def finetune(
    config: Config,
    splits: Splits,
    pretrained: PhaseResult,
    cache_dir=None,
    callbacks=(),
    verbose=2,
    log=print,
) -> PhaseResult:
    """Finetune a copy of the pretrained encoder with a fresh Dense head on the labels.

    The run is keyed on the encoder's weights themselves, so another encoder (or one from a
    pretraining stopped early) never reuses this one's finetuning.
    """
    weights = pretrained.model.encoder.get_weights()
    with over_devices(config, supervised=supervised_batch_size(config, splits)):
        encoder = keras.models.clone_model(pretrained.model.encoder)  # on the same devices
    encoder.set_weights(weights)
    return _supervised(
        "finetuning",
        config,
        splits,
        encoder,
        cache_dir,
        encoder_key(weights),
        callbacks=callbacks,
        verbose=verbose,
        log=log,
    )


def provenance(result: PhaseResult) -> str:
    """Where a phase's model came from: the shipped run, the local cache, or this run."""
    if result.shipped:
        return result.shipped
    if result.from_cache:
        return f"from the cache: {result.run_dir.name}"
    return f"trained here in {result.seconds:.0f} s"


def report(result: PhaseResult, evaluated_on: str = "test") -> str:
    """'Maximal test accuracy: 65.32%': the reference's line ("Maximal validation accuracy"),
    naming the split it really scored (`data.evaluate_on`: "test" or "validation")."""
    return f"Maximal {evaluated_on} accuracy: {result.max_val_accuracy * 100:.2f}%"
