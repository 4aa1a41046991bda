"""`ContrastiveModel`: SimCLR pretraining with an online linear probe, on any Keras backend.

One optimizer updates everything, but the probe sees its features through `stop_gradient`,
so the encoder learns from the contrastive loss alone and the probe from the labels alone
(with Adam's per-weight state this is the same as the reference's two optimizers).

Other methods than SimCLR (`config.METHODS`) change only the loss on the projections;
"simsiam" adds a predictor on top of the projection head, and its loss stops the gradient
through the branch it predicts.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from simclr_lab.config import DEFAULT_METHOD, METHODS
from simclr_lab.loss import (
    barlow_twins_loss,
    contrastive_accuracy,
    get_loss,
    positives_only_loss,
    simsiam_loss,
)

# Methods whose projection head ends in BatchNorm, as SimSiam's projector does: positives-only
# gets it too, so that it differs from SimSiam only by the predictor and the stop-gradient.
OUTPUT_BATCHNORM_METHODS = ("positives_only", "simsiam")


PARTS = (
    "encoder",
    "projection_head",
    "linear_probe",
    "contrastive_augmenter",
    "classification_augmenter",
    "predictor",
)


@keras.saving.register_keras_serializable(package="simclr_lab")
class ContrastiveModel(keras.Model):
    """Inputs: (unlabelled (U, H, W, 3), labelled (L, H, W, 3)) uint8 when training, or test
    images (B, H, W, 3) when evaluating; targets: the labelled images' labels.

    Reports c_loss and c_acc (contrastive, on two strong views of every image; on test pairs
    when validating), p_loss and p_acc (the linear probe on weakly augmented labelled images
    during training, on plain test images when validating).

    method: "simclr" (`loss` at `temperature`) or a method without negatives (`METHODS`);
    "simsiam" needs a `predictor` (width -> width), the others take none.
    """

    def __init__(
        self,
        encoder,
        projection_head,
        linear_probe,
        contrastive_augmenter,
        classification_augmenter,
        temperature: float = 0.1,
        learnable_temperature: bool = False,
        loss: str = "infonce",
        method: str = DEFAULT_METHOD,
        predictor=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(f"temperature={temperature!r} must be > 0.")
        if method not in METHODS:
            allowed = ", ".join(map(repr, METHODS))
            raise ValueError(f"Unknown method={method!r}; allowed: {allowed}.")
        if (predictor is not None) != (method == "simsiam"):
            raise ValueError(f"method={method!r} needs a predictor exactly when it is 'simsiam'.")
        self.method, self.predictor = method, predictor
        self.encoder = encoder
        self.projection_head = projection_head
        self.linear_probe = linear_probe
        self.contrastive_augmenter = contrastive_augmenter
        self.classification_augmenter = classification_augmenter
        self.loss_name, self.loss_fn = loss, get_loss(loss)
        self.learnable_temperature = learnable_temperature
        self.initial_temperature = float(temperature)
        self.log_temperature = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(temperature)),
            trainable=learnable_temperature,
            name="log_temperature",
        )
        self.c_loss_tracker = keras.metrics.Mean(name="c_loss")
        self.c_acc_tracker = keras.metrics.Mean(name="c_acc")
        self.p_loss_tracker = keras.metrics.Mean(name="p_loss")
        self.p_acc_tracker = keras.metrics.SparseCategoricalAccuracy(name="p_acc")
        self.temperature_tracker = keras.metrics.Mean(name="temperature")

    def get_config(self) -> dict:
        """Everything `__init__` took, for `model.save("x.keras")` and `keras.saving.load_model`
        (the parts as their own Keras configs; the trained temperature is a weight)."""
        parts = {name: getattr(self, name, None) for name in PARTS}
        return {
            "name": self.name,
            "temperature": self.initial_temperature,
            "learnable_temperature": self.learnable_temperature,
            "loss": self.loss_name,
            "method": self.method,
            **{k: keras.saving.serialize_keras_object(v) for k, v in parts.items() if v},
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for name in PARTS:
            if config.get(name) is not None:
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    @property
    def temperature(self):
        """The current temperature (a scalar tensor), always > 0."""
        return ops.exp(self.log_temperature)

    @property
    def metrics(self):
        trackers = [self.c_loss_tracker, self.c_acc_tracker, self.p_loss_tracker]
        trackers.append(self.p_acc_tracker)
        if self.learnable_temperature:
            trackers.append(self.temperature_tracker)
        return trackers

    def call(self, inputs, training=False):
        if isinstance(inputs, (tuple, list)):
            unlabelled, labelled = inputs
            images = ops.concatenate([unlabelled, labelled], axis=0)  # (U + L, H, W, 3)
        else:
            images = labelled = inputs
        # Two independent strong views, also when validating (c_acc on test pairs).
        views = [self.contrastive_augmenter(images, training=True) for _ in range(2)]
        projections = [
            self.projection_head(self.encoder(view, training=training), training=training)
            for view in views
        ]  # 2 x (N, width)
        weak = self.classification_augmenter(labelled, training=training)
        features = ops.stop_gradient(self.encoder(weak, training=False))  # (L, width)
        outputs = {
            "projections_1": projections[0],
            "projections_2": projections[1],
            "probe_logits": self.linear_probe(features),  # (L, classes)
        }
        if self.predictor is not None:
            for index, projection in enumerate(projections, start=1):
                outputs[f"predictions_{index}"] = self.predictor(projection, training=training)
        return outputs

    def pretext_loss(self, y_pred):
        """The method's loss on the projections, and their (N, N) similarities."""
        p1, p2 = y_pred["projections_1"], y_pred["projections_2"]
        if self.method == "positives_only":
            return positives_only_loss(p1, p2)
        if self.method == "simsiam":
            return simsiam_loss(y_pred["predictions_1"], y_pred["predictions_2"], p1, p2)
        if self.method == "barlow_twins":
            return barlow_twins_loss(p1, p2)
        return self.loss_fn(p1, p2, self.temperature)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Losses in float32 also under a mixed-precision policy.
        y_pred = {name: ops.cast(value, "float32") for name, value in y_pred.items()}
        c_loss, similarities = self.pretext_loss(y_pred)
        p_loss = ops.mean(
            ops.sparse_categorical_crossentropy(y, y_pred["probe_logits"], from_logits=True)
        )
        self.c_loss_tracker.update_state(c_loss)
        self.c_acc_tracker.update_state(contrastive_accuracy(similarities))
        self.p_loss_tracker.update_state(p_loss)
        self.p_acc_tracker.update_state(y, y_pred["probe_logits"])
        if self.learnable_temperature:  # a fixed temperature needs no tracking in the step
            self.temperature_tracker.update_state(self.temperature)
        return c_loss + p_loss


@keras.saving.register_keras_serializable(package="simclr_lab")
class UnlabelledContrastiveModel(ContrastiveModel):
    """`ContrastiveModel` for images without labels (a folder without class folders): no
    probe. Inputs: uint8 images (U, H, W, 3); reports c_loss and c_acc (on test pairs when
    validating). Every method of `ContrastiveModel` applies (`method`, `predictor`)."""

    def __init__(self, encoder, projection_head, contrastive_augmenter, **kwargs):
        for absent in ("linear_probe", "classification_augmenter"):  # saved as None
            kwargs.pop(absent, None)
        super().__init__(encoder, projection_head, None, contrastive_augmenter, None, **kwargs)

    @property
    def metrics(self):
        trackers = [self.c_loss_tracker, self.c_acc_tracker]
        return trackers + ([self.temperature_tracker] if self.learnable_temperature else [])

    def call(self, images, training=False):
        views = [self.contrastive_augmenter(images, training=True) for _ in range(2)]
        projections = [
            self.projection_head(self.encoder(view, training=training), training=training)
            for view in views
        ]  # 2 x (U, width)
        outputs = {"projections_1": projections[0], "projections_2": projections[1]}
        if self.predictor is not None:
            for index, projection in enumerate(projections, start=1):
                outputs[f"predictions_{index}"] = self.predictor(projection, training=training)
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred = {name: ops.cast(value, "float32") for name, value in y_pred.items()}
        c_loss, similarities = self.pretext_loss(y_pred)
        self.c_loss_tracker.update_state(c_loss)
        self.c_acc_tracker.update_state(contrastive_accuracy(similarities))
        if self.learnable_temperature:
            self.temperature_tracker.update_state(self.temperature)
        return c_loss
