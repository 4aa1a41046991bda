import dataclasses
import gc
import gzip

import numpy as np
import pytest

from simclr_lab.config import DataConfig
from simclr_lab.runs.presets import get_preset
from simclr_lab.sources import data
from simclr_lab.sources.batching import EvalStream, LabelledStream, PairedStream, plan_batches
from simclr_lab.sources.splits import balanced_subset
from simclr_lab.sources.synthetic import make_shapes


def test_reference_batching_arithmetic():
    plan = plan_batches(100_000, 5_000, 525)
    assert (plan.steps, plan.unlabelled_per_step, plan.labelled_per_step) == (200, 500, 25)
    assert not plan.repeats_labelled


def test_repeating_labelled_stream_outside_stl10_proportions():
    # The reference's formula would give 1,000 // 116 = 8 labelled images a step here.
    plan = plan_batches(60_000, 1_000, 525, labelled_per_step=25)
    assert (plan.steps, plan.unlabelled_per_step, plan.labelled_per_step) == (120, 500, 25)
    assert plan.repeats_labelled


def test_zero_labelled_per_step_is_refused_with_advice():
    with pytest.raises(ValueError, match="leaves 0 labelled images per step.*labelled_per_step"):
        plan_batches(60_000, 100, 525)


def test_paired_stream_batches_and_epoch_reshuffle():
    unlabelled = np.arange(50).reshape(50, 1, 1, 1).astype("uint8")
    labelled = np.arange(7).reshape(7, 1, 1, 1).astype("uint8")
    labels = np.arange(7).astype("int32")
    plan = plan_batches(50, 7, 13, labelled_per_step=3)  # 5 steps of 10 + 3
    stream = PairedStream(unlabelled, labelled, labels, plan, epochs=2, seed=0)
    assert len(stream) == 10 and stream.steps_per_epoch == 5
    (u, x), y = stream[0]
    assert u.shape == (10, 1, 1, 1) and x.shape == (3, 1, 1, 1) and y.shape == (3,)
    np.testing.assert_array_equal(x[:, 0, 0, 0], y)  # images stay with their labels
    first = np.concatenate([stream[i][0][0].ravel() for i in range(5)])
    second = np.concatenate([stream[i][0][0].ravel() for i in range(5, 10)])
    assert sorted(first) == list(range(50))  # every unlabelled image once, no partial step
    assert not np.array_equal(first, second)  # reshuffled for the next epoch


def test_resumed_stream_gives_the_same_batches():
    images = np.arange(40).reshape(40, 1, 1, 1).astype("uint8")
    whole = LabelledStream(images, np.arange(40), 8, epochs=3, seed=5)
    resumed = LabelledStream(images, np.arange(40), 8, epochs=3, seed=5)
    resumed.set_start_epoch(2)
    assert len(resumed) == 5
    np.testing.assert_array_equal(resumed[0][1], whole[10][1])
    np.testing.assert_array_equal(resumed[4][1], whole[14][1])


def test_stream_with_fixed_steps_repeats_few_labels():
    images = np.arange(10).reshape(10, 1, 1, 1).astype("uint8")
    stream = LabelledStream(images, np.arange(10), 8, epochs=2, seed=3, steps_per_epoch=5)
    assert stream.steps_per_epoch == 5 and len(stream) == 10
    epoch = np.concatenate([stream[i][1] for i in range(5)])
    assert len(epoch) == 40 and all(len(stream[i][1]) == 8 for i in range(10))
    assert np.bincount(epoch, minlength=10).tolist() == [4] * 10  # each label as often
    assert LabelledStream(images, np.arange(10), 8).steps_per_epoch == 1  # one pass


def test_test_stream_keeps_every_image():
    stream = EvalStream(np.zeros((11, 2, 2, 3), "uint8"), np.zeros(11, "int32"), 4)
    assert [len(stream[i][1]) for i in range(len(stream))] == [4, 4, 3]


def test_balanced_subset_is_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 30)
    chosen = balanced_subset(labels, 5, 10, seed=1)
    assert np.bincount(labels[chosen]).tolist() == [5] * 10
    np.testing.assert_array_equal(chosen, balanced_subset(labels, 5, 10, seed=1))
    assert not np.array_equal(chosen, balanced_subset(labels, 5, 10, seed=2))
    with pytest.raises(ValueError, match="labels_per_class=31"):
        balanced_subset(labels, 31, 10, seed=1)


def test_synthetic_is_deterministic_balanced_and_any_size():
    a, ya = make_shapes(40, 48, seed=3)
    b, yb = make_shapes(40, 48, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (40, 48, 48, 3) and a.dtype == np.uint8
    assert np.bincount(ya).tolist() == [4] * 10
    c, _ = make_shapes(40, 48, seed=4)
    assert not np.array_equal(a, c)


def test_synthetic_classes_differ_in_shape_not_in_colour():
    images, labels = make_shapes(2000, 32, seed=0)
    mean_colour = np.array([images[labels == c].mean(axis=(0, 1, 2)) for c in range(10)])
    assert np.ptp(mean_colour, axis=0).max() < 20  # colour alone does not tell the class


def test_smoke_splits_shapes(smoke_splits):
    s = smoke_splits
    assert s.unlabelled.shape == (960, 32, 32, 3) and s.unlabelled.dtype == np.uint8
    assert s.labelled_images.shape == (200, 32, 32, 3)
    assert np.bincount(s.labelled_labels).tolist() == [20] * 10
    assert s.test_images.shape == (300, 32, 32, 3) and s.test_labels.dtype == np.int32


def test_fashion_mnist_from_idx_files(fake_fashion_mnist):
    folder, arrays = fake_fashion_mnist
    assert data.find_fashion_mnist() == folder  # $SIMCLR_LAB_DATA is looked in first
    splits = data.load_splits(
        DataConfig(source="fashion_mnist", image_size=32, labels_per_class=3)
    )
    assert splits.unlabelled.shape == (60, 32, 32, 3)
    np.testing.assert_array_equal(splits.unlabelled[:, 2:30, 2:30, 1], arrays["train_images"])
    assert splits.unlabelled[:, :2].max() == 0  # zero padding around the 28x28 item
    assert np.bincount(splits.labelled_labels).tolist() == [3] * 10
    assert splits.test_images.shape == (20, 32, 32, 3)


def test_fashion_mnist_resized_to_larger_images(fake_fashion_mnist):
    splits = data.load_splits(
        DataConfig(source="fashion_mnist", image_size=48, labels_per_class=1)
    )
    assert splits.unlabelled.shape == (60, 48, 48, 3)


def test_truncated_and_corrupt_idx_files_are_named(tmp_path, write_idx):
    good = tmp_path / "good.gz"
    write_idx(good, np.zeros((4, 28, 28)))
    raw = gzip.open(good).read()
    truncated = tmp_path / "truncated.gz"
    with gzip.open(truncated, "wb") as file:
        file.write(raw[:-100])
    with pytest.raises(ValueError, match="truncated.gz is truncated or corrupt"):
        data.read_idx(truncated)
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="corrupt.gz is not a readable gzip IDX file"):
        data.read_idx(corrupt)


@pytest.fixture
def offline(monkeypatch):
    """No host can be reached, as on a machine without internet."""

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.socket, "create_connection", no_network)


def test_missing_fashion_mnist_offline_fails_fast_with_the_ways(tmp_path, monkeypatch, offline):
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "none")
    with pytest.raises(data.DataNotFoundError, match="dataset-fashion-mnist.*SIMCLR_LAB_DATA"):
        data.load_fashion_mnist()


def test_missing_stl10_offline_fails_fast(offline):
    with pytest.raises(data.DataNotFoundError, match="stl10.*internet access"):
        data.load_stl10()


def test_stl10_through_tfds_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data, "_require_network", lambda *args, **kwargs: None)
    with tfds.testing.mock_data(num_examples=30):
        splits = data.load_splits(get_preset("reference").data)
    assert splits.source == "stl10" and splits.class_names == data.STL10_CLASSES
    assert splits.unlabelled.shape == (30, 96, 96, 3) and splits.unlabelled.dtype == np.uint8
    assert splits.labelled_images.shape == (30, 96, 96, 3)
    assert splits.test_labels.shape == (30,)


def test_a_second_composite_load_shares_the_rendered_images(fake_fashion_mnist):
    config = DataConfig(source="fashion_mnist_composite", image_size=32, labels_per_class=2)
    first = data.load_splits(config)
    shorter = data.load_splits(dataclasses.replace(config, num_unlabelled=30))
    assert np.shares_memory(first.unlabelled, shorter.unlabelled)  # rendered once, no copy
    np.testing.assert_array_equal(first.unlabelled[:30], shorter.unlabelled)
    assert not first.unlabelled.flags.writeable  # nobody can change the shared copy
    assert not shorter.unlabelled.flags.writeable


def test_a_subset_alone_does_not_keep_all_rendered_images(fake_fashion_mnist):
    config = DataConfig(
        source="fashion_mnist_composite", image_size=32, labels_per_class=2, num_unlabelled=30
    )
    shorter = data.load_splits(config)
    assert shorter.unlabelled.base is None  # its own 30 images, not a view of all 60
    gc.collect()
    assert data._held_render(data.find_fashion_mnist()) is None  # all 60 rendered were freed
    again = data.load_splits(config)  # rendered again, the same images
    np.testing.assert_array_equal(again.unlabelled, shorter.unlabelled)
