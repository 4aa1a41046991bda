import numpy as np
import pytest

from simclr_lab import evaluate


def brute_force_knn(train, train_y, test, k, tau, classes):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    predictions = []
    for row in test:
        sims = train @ row
        order = np.argsort(-sims, kind="stable")[:k]
        votes = np.zeros(classes)
        for i in order:
            votes[train_y[i]] += np.exp(sims[i] / tau)
        predictions.append(int(np.argmax(votes)))
    return np.array(predictions)


@pytest.mark.parametrize("k", [1, 5, 40, 60])
def test_knn_matches_brute_force(k):
    rng = np.random.default_rng(k)
    train, test = rng.normal(size=(60, 8)), rng.normal(size=(25, 8))
    train_y = rng.integers(0, 4, 60)
    expected = brute_force_knn(train, train_y, test, k, 0.07, 4)
    np.testing.assert_array_equal(evaluate.knn_predict(train, train_y, test, k=k), expected)


def test_knn_ties_and_k_equal_to_n():
    # Two identical training points of different classes: equal votes, the lower class wins.
    train = np.array([[1.0, 0.0], [1.0, 0.0]])
    predicted = evaluate.knn_predict(train, np.array([1, 0]), np.array([[1.0, 0.1]]), k=2)
    assert predicted.tolist() == [0]


def test_batched_knn_equals_unbatched():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 16)), rng.normal(size=(101, 16))
    train_y = rng.integers(0, 10, 300)
    whole = evaluate.knn_predict(train, train_y, test, k=20, batch_size=1000)
    batched = evaluate.knn_predict(train, train_y, test, k=20, batch_size=7)
    np.testing.assert_array_equal(whole, batched)


def test_knn_rejects_k_out_of_range():
    x, y = np.ones((5, 2)), np.arange(5)
    with pytest.raises(ValueError, match="k=6"):
        evaluate.knn_predict(x, y, x, k=6)
    with pytest.raises(ValueError, match="k=0"):
        evaluate.knn_predict(x, y, x, k=0)


def _separable(seed=0, n=200):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4, size=(3, 10))
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(size=(n, 10)), labels


def test_linear_probe_beats_chance_and_equals_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train, train_y = _separable(0)
    test, test_y = _separable(0, 400)
    test, test_y = test[200:], test_y[200:]
    accuracy = evaluate.linear_probe_accuracy(train, train_y, test, test_y)
    assert accuracy > 0.8
    scaler = StandardScaler().fit(train)
    model = LogisticRegression(max_iter=2000, random_state=0).fit(scaler.transform(train), train_y)
    assert accuracy == pytest.approx(model.score(scaler.transform(test), test_y))


def test_empty_and_mismatched_features_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        evaluate.linear_probe_accuracy(np.zeros((0, 3)), [], np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="3 feature rows but 2 labels"):
        evaluate.knn_accuracy(np.ones((3, 2)), [0, 1], np.ones((2, 2)), [0, 1])


def test_knn_monitor_adds_val_knn_acc(smoke_config, smoke_splits):
    from simclr_lab.runs.train import build_contrastive_model

    model = build_contrastive_model(smoke_config, smoke_splits)
    monitor = evaluate.KNNMonitor(smoke_splits, every=1, k=10)
    monitor.set_model(model)
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert 0.0 <= logs["val_knn_acc"] <= 1.0


def test_encode_checks_its_input(smoke_config, smoke_splits):
    from simclr_lab.encoder import get_encoder

    encoder = get_encoder(8, 32)
    features = evaluate.encode(encoder, smoke_splits.test_images[:10], batch_size=3)
    assert features.shape == (10, 8)
    with pytest.raises(ValueError, match="uint8"):
        evaluate.encode(encoder, smoke_splits.test_images[:2].astype("float32"))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        evaluate.encode(encoder, np.zeros((2, 32, 32), "uint8"))


def test_accuracy_and_loss_keys_follow_the_history():
    probe = {"c_loss": [1.0], "val_p_acc": [0.5], "val_p_loss": [1.2]}
    assert (evaluate.accuracy_key(probe), evaluate.loss_key(probe)) == ("val_p_acc", "val_p_loss")
    classifier = {"acc": [0.4], "val_acc": [0.5], "val_loss": [1.1]}
    assert (evaluate.accuracy_key(classifier), evaluate.loss_key(classifier)) == (
        "val_acc",
        "val_loss",
    )
    with pytest.raises(ValueError, match=r"it has \['acc', 'loss'\]"):
        evaluate.accuracy_key({"loss": [1.0], "acc": [0.5]})
    with pytest.raises(ValueError, match="no val_loss"):
        evaluate.loss_key({"val_acc": [0.5]})


def test_frozen_feature_comparison_seeds_its_random_encoder(smoke_splits):
    from simclr_lab.encoder import get_encoder

    encoder = get_encoder(8, 32)
    first = evaluate.frozen_feature_comparison(encoder, smoke_splits, width=8, seed=3, k=10)
    assert list(first) == ["simclr encoder", "random encoder", "raw pixels"]
    assert first["raw pixels"] == evaluate.pixel_scores(smoke_splits, k=10)
    assert first["simclr encoder"] == evaluate.frozen_scores(encoder, smoke_splits, k=10)
    again = evaluate.frozen_feature_comparison(None, smoke_splits, width=8, seed=3, k=10)
    assert list(again) == ["random encoder", "raw pixels"]
    assert again["random encoder"] == first["random encoder"]  # the same seed, the same weights
    featurisers = evaluate.comparison_encoders(None, 8, 32, seed=3)
    assert featurisers["random encoder"](smoke_splits.test_images[:4]).shape == (4, 8)
    assert featurisers["raw pixels"](smoke_splits.test_images[:4]).shape == (4, 32 * 32 * 3)


def test_summarise_over_seeds_groups_in_order_with_mean_and_spread():
    rows = [
        {"name": "b", "n": 1, "acc": 0.2},
        {"name": "a", "n": 1, "acc": 0.5},
        {"name": "b", "n": 1, "acc": 0.4},
    ]
    summary = evaluate.summarise_over_seeds(rows, ("name", "n"), ("acc",))
    assert [(e["name"], e["seeds"]) for e in summary] == [("b", 2), ("a", 1)]
    assert summary[0]["acc"] == pytest.approx(0.3)
    assert (summary[0]["acc_min"], summary[0]["acc_max"]) == (0.2, 0.4)
