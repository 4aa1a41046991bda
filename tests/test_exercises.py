"""The exercises' checks: a right answer passes, each typical wrong answer is named, a stub
says what to write; the checks' answers are the library's own."""

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from simclr_lab import augment, diagnostics, exercises, loss

ROOT = Path(__file__).resolve().parents[1]


def verdict(check, fn, capsys):
    passed = check(fn)
    said = capsys.readouterr().out.strip()
    assert "\n" not in said, "one sentence"
    return passed, said


# ---- answers a learner might write --------------------------------------------------------


def nt_xent_rows(z1, z2, temperature, normalise=True, mask=True):
    """A learner's NT-Xent, each row's loss (2N,), with two of the usual mistakes as switches."""
    z = np.concatenate([z1, z2]).astype("float64")
    if normalise:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
    logits = z @ z.T / temperature
    if mask:
        np.fill_diagonal(logits, -np.inf)
    n = len(z1)
    positives = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    top = logits.max(axis=1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(2 * n), positives]


def nt_xent_right(z1, z2, temperature):
    return nt_xent_rows(z1, z2, temperature).mean()


def nt_xent_no_mask(z1, z2, temperature):
    return nt_xent_rows(z1, z2, temperature, mask=False).mean()


def nt_xent_unnormalised(z1, z2, temperature):
    return nt_xent_rows(z1, z2, temperature, normalise=False).mean()


def nt_xent_twice(z1, z2, temperature):
    return nt_xent_right(z1, z2, temperature**2)


def nt_xent_one_direction(z1, z2, temperature):
    return nt_xent_rows(z1, z2, temperature)[: len(z1)].mean()  # view 1's anchors only


def nt_xent_per_row(z1, z2, temperature):
    return nt_xent_rows(z1, z2, temperature)  # (2N,): not yet averaged


def stub(*args):
    raise exercises.NotWritten("return the mean loss over the 2N views.")


@pytest.mark.parametrize(
    "fn, said",
    [
        (nt_xent_right, "✓"),
        (nt_xent_no_mask, "diagonal is not masked"),
        (nt_xent_unnormalised, "not normalised"),
        (nt_xent_twice, "temperature is applied twice"),
        (nt_xent_one_direction, "only one direction"),
        (nt_xent_per_row, "returned shape (12,); expected ()"),
        (stub, "nt_xent is not written yet: return the mean loss"),
        (lambda z1, z2, t: None, "returned None"),
        (lambda z1, z2, t: 1 / 0, "raised ZeroDivisionError"),
        (lambda z1, z2, t: exercises.infonce_reference(z1, z2, t), "cross-view InfoNCE"),
    ],
)
def test_check_nt_xent_names_the_first_mistake(fn, said, capsys):
    passed, printed = verdict(exercises.check_nt_xent, fn, capsys)
    assert passed == (said == "✓")
    assert said in printed


def test_nt_xent_answer_is_the_librarys_loss():
    z1, z2 = exercises.nt_xent_inputs(3)
    library, _ = loss.ntxent_loss(
        keras.ops.convert_to_tensor(z1), keras.ops.convert_to_tensor(z2), 0.2
    )
    np.testing.assert_allclose(exercises.nt_xent_reference(z1, z2, 0.2), float(library), rtol=1e-5)


def test_every_named_mistake_differs_from_the_answer():
    """Otherwise a mistake would pass, or the answer would be named a mistake."""
    z1, z2 = exercises.nt_xent_inputs(0)
    right = exercises.nt_xent_reference(z1, z2, 0.5)
    variants = [
        exercises.nt_xent_reference(z1, z2, 0.5, normalise=False),
        exercises.nt_xent_reference(z1, z2, 0.5, mask=False),
        exercises.nt_xent_reference(z1, z2, 0.5, power=2),
        exercises.nt_xent_reference(z1, z2, 0.5, power=0),
        exercises.nt_xent_reference(z1, z2, 0.5, halves=1),
        exercises.infonce_reference(z1, z2, 0.5),
    ]
    assert all(abs(v - right) > 1e-3 * right for v in variants)
    assert len({round(float(v), 6) for v in variants}) == len(variants)


# ---- colour affine ------------------------------------------------------------------------


def affine_right(images, scale, mixing):
    matrix = scale * np.eye(3) + mixing
    return np.clip(np.einsum("bhwc,bcd->bhwd", images, matrix), 0, 1)


@pytest.mark.parametrize(
    "fn, said",
    [
        (affine_right, "✓"),
        (lambda i, s, m: np.einsum("bhwc,bcd->bhwd", i, s * np.eye(3) + m), "nothing is clipped"),
        (
            lambda i, s, m: np.clip(np.einsum("bhwc,bdc->bhwd", i, s * np.eye(3) + m), 0, 1),
            "transposed",
        ),
        (lambda i, s, m: np.clip(np.einsum("bhwc,bcd->bhwd", i, s + m), 0, 1), "diagonal"),
        (lambda i, s, m: i[:, :, :, :1], "returned shape (4, 5, 5, 1)"),
    ],
)
def test_check_color_affine(fn, said, capsys):
    passed, printed = verdict(exercises.check_color_affine, fn, capsys)
    assert passed == (said == "✓") and said in printed


def test_color_affine_answer_is_the_librarys():
    images, scale, mixing = exercises.color_affine_inputs()
    library = keras.ops.convert_to_numpy(augment.apply_color_affine(images, scale, mixing))
    np.testing.assert_allclose(affine_right(images, scale, mixing), library, atol=1e-6)


# ---- kNN ----------------------------------------------------------------------------------


def knn_votes(train, labels, test, k, tau, normalise=True, farthest=False, weighted=True):
    """A learner's weighted kNN, with three of the usual mistakes as switches."""
    if normalise:
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        test = test / np.linalg.norm(test, axis=1, keepdims=True)
    predictions = []
    for row in test @ train.T:
        nearest = np.argsort(row if farthest else -row)[:k]
        weights = np.exp((row[nearest] - row[nearest].max()) / tau) if weighted else None
        predictions.append(np.bincount(labels[nearest], weights=weights, minlength=3).argmax())
    return np.array(predictions)


def knn_right(train, labels, test, k, tau):
    return knn_votes(train, labels, test, k, tau)


@pytest.mark.parametrize(
    "fn, said",
    [
        (knn_right, "✓"),
        (lambda *args: knn_votes(*args, farthest=True), "least similar"),
        (lambda *args: knn_votes(*args, weighted=False), "one vote"),
        (lambda *args: knn_votes(*args, normalise=False), "not normalised"),
        (lambda tr, y, te, k, tau: np.zeros((len(te), 3)), "returned shape (12, 3)"),
    ],
)
def test_check_knn(fn, said, capsys):
    passed, printed = verdict(exercises.check_knn, fn, capsys)
    assert passed == (said == "✓") and said in printed


# ---- alignment and uniformity -------------------------------------------------------------


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "fn, said",
    [
        (lambda u, v: np.mean(np.sum((_unit(u) - _unit(v)) ** 2, axis=1)), "✓"),
        (lambda u, v: np.mean(np.sum((u - v) ** 2, axis=1)), "not normalised"),
        (lambda u, v: np.mean(np.linalg.norm(_unit(u) - _unit(v), axis=1)), "not squared"),
        (lambda u, v: np.sum((_unit(u) - _unit(v)) ** 2), "summed over the pairs"),
    ],
)
def test_check_alignment(fn, said, capsys):
    passed, printed = verdict(exercises.check_alignment, fn, capsys)
    assert passed == (said == "✓") and said in printed


def uniformity_right(u):
    u = _unit(u)
    i, j = np.triu_indices(len(u), 1)
    return np.log(np.mean(np.exp(-2 * np.sum((u[i] - u[j]) ** 2, axis=1))))


def uniformity_with_self(u):
    u = _unit(u)
    squared = np.sum((u[:, None] - u[None]) ** 2, axis=-1)
    return np.log(np.mean(np.exp(-2 * squared)))


@pytest.mark.parametrize(
    "fn, said",
    [
        (uniformity_right, "✓"),
        (uniformity_with_self, "with itself"),
        (lambda u: np.exp(uniformity_right(u)), "the log is missing"),
        (lambda u: _uniformity_raw(u), "not normalised"),
    ],
)
def test_check_uniformity(fn, said, capsys):
    passed, printed = verdict(exercises.check_uniformity, fn, capsys)
    assert passed == (said == "✓") and said in printed


def _uniformity_raw(u):
    i, j = np.triu_indices(len(u), 1)
    return np.log(np.mean(np.exp(-2 * np.sum((u[i] - u[j]) ** 2, axis=1).astype("float64"))))


def test_alignment_answer_is_the_librarys():
    u, v = exercises.embedding_inputs()
    assert abs(diagnostics.alignment(u, v) - np.mean(np.sum((_unit(u) - _unit(v)) ** 2, 1))) < 1e-6


# ---- the lessons' worked answers ------------------------------------------------------------

FOLD = re.compile(r"<details>.*?```python\n(.*?)```.*?</details>", re.S)


def lesson_exercises():
    """(lesson, the worked answer's code, the check cell's code) for every fold after a check."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for index, cell in enumerate(cells):
            source = "".join(cell["source"])
            match = FOLD.search(source) if cell["cell_type"] == "markdown" else None
            if match:
                check = next(
                    "".join(c["source"])
                    for c in reversed(cells[:index])
                    if c["cell_type"] == "code" and "exercises.check_" in "".join(c["source"])
                )
                found.append((path.stem, match.group(1), check))
    return found


def test_the_course_has_at_least_five_checked_exercises():
    checks = {
        name for _, _, check in lesson_exercises() for name in re.findall(r"check_\w+", check)
    }
    assert len(checks) >= 5, checks


@pytest.mark.parametrize("lesson, answer, check", lesson_exercises())
def test_each_lessons_worked_answer_passes_its_check(lesson, answer, check, capsys):
    namespace = {"np": np, "exercises": exercises, "keras": keras, "ops": keras.ops}
    notebook = json.loads((ROOT / "notebooks" / f"{lesson}.ipynb").read_text())
    for cell in notebook["cells"]:  # a lesson's own classes that an answer builds on
        source = "".join(cell["source"])
        if (
            cell["cell_type"] == "code"
            and source.startswith("class ")
            and "NotWritten" not in source
        ):
            exec(source, namespace)
    exec(answer, namespace)
    exec(check, namespace)  # the lesson's check cell: it sets `passed`
    assert namespace["passed"] is True, capsys.readouterr().out


# ---- the training step --------------------------------------------------------------------


class Step(keras.Model):
    """A learner's SimCLR step, written apart from the library's: NT-Xent plus the probe."""

    def __init__(self, encoder, head, probe, strong, weak, temperature):
        super().__init__()
        self.encoder, self.head, self.probe = encoder, head, probe
        self.strong, self.weak, self.temperature = strong, weak, temperature

    def call(self, inputs, training=False):
        unlabelled, labelled = inputs
        images = keras.ops.concatenate([unlabelled, labelled])
        z1, z2 = (
            self.head(self.encoder(self.strong(images, training=True), training=training))
            for _ in range(2)
        )
        features = keras.ops.stop_gradient(self.encoder(self.weak(labelled), training=False))
        return z1, z2, self.probe(features)

    def contrastive(self, z1, z2, temperature):
        n = keras.ops.shape(z1)[0]
        z = keras.ops.normalize(keras.ops.concatenate([z1, z2]), axis=1)
        logits = keras.ops.matmul(z, keras.ops.transpose(z)) / temperature
        logits = keras.ops.where(keras.ops.eye(2 * n) > 0, -1e9, logits)
        partners = keras.ops.concatenate([keras.ops.arange(n) + n, keras.ops.arange(n)])
        return keras.ops.mean(
            keras.ops.sparse_categorical_crossentropy(partners, logits, from_logits=True)
        )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        z1, z2, logits = y_pred
        probe = keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return self.contrastive(z1, z2, self.temperature) + keras.ops.mean(probe)


class NoProbeLoss(Step):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.contrastive(y_pred[0], y_pred[1], self.temperature)


class NoTemperature(Step):
    def contrastive(self, z1, z2, temperature):
        return super().contrastive(z1, z2, 1.0)


class InfoNCEStep(Step):
    def contrastive(self, z1, z2, temperature):
        u, v = keras.ops.normalize(z1, axis=1), keras.ops.normalize(z2, axis=1)
        s = keras.ops.matmul(u, keras.ops.transpose(v))
        s = s / temperature
        targets = keras.ops.arange(keras.ops.shape(s)[0])
        rows = keras.ops.sparse_categorical_crossentropy(targets, s, from_logits=True)
        cols = keras.ops.sparse_categorical_crossentropy(
            targets, keras.ops.transpose(s), from_logits=True
        )
        return (keras.ops.mean(rows) + keras.ops.mean(cols)) / 2


class NotWrittenStep(Step):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        raise exercises.NotWritten("write InfoNCE.")


class WrongOutputs(Step):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        z1, z2 = y_pred  # call returns three tensors
        return self.contrastive(z1, z2, self.temperature)


@pytest.mark.parametrize(
    "model_class, said",
    [
        (Step, "equals ContrastiveModel's"),
        (NoProbeLoss, "probe's cross-entropy is missing"),
        (NoTemperature, "temperature is missing"),
        (WrongOutputs, "Your model raised ValueError"),
    ],
)
def test_check_training_step(model_class, said, capsys):
    passed, printed = verdict(exercises.check_training_step, model_class, capsys)
    assert passed == (said == "equals ContrastiveModel's") and said in printed


@pytest.mark.parametrize(
    "model_class, said",
    [
        (InfoNCEStep, "equals ContrastiveModel's"),
        (Step, "that is NT-Xent (2N - 2 negatives); this step uses InfoNCE"),
        (NotWrittenStep, "your step is not written yet: write InfoNCE."),
    ],
)
def test_check_training_step_of_the_references_loss(model_class, said, capsys):
    check = lambda m: exercises.check_training_step(m, loss_name="infonce")  # noqa: E731
    passed, printed = verdict(check, model_class, capsys)
    assert passed == (said == "equals ContrastiveModel's") and said in printed


def test_lesson_3bs_hand_written_step_has_the_librarys_loss(capsys):
    """The class the lesson writes, run by the check: the same loss as ContrastiveModel's to
    1e-5; the stored lesson shows that line."""
    notebook = json.loads((ROOT / "notebooks" / "03b_training_step.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    namespace = {"keras": keras, "ops": keras.ops}
    exec(next(c for c in cells if c.startswith("class SimCLR(keras.Model)")), namespace)
    assert exercises.check_training_step(namespace["SimCLR"]) is True
    assert "equals ContrastiveModel's" in capsys.readouterr().out
    stored = json.dumps(notebook["cells"])
    assert "equals ContrastiveModel's" in stored and "to within 1e-05" in stored
