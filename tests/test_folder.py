"""A folder of one's own images: scanning, decoding once into a cache, the splits, bad input
refused before training with the folder left as it was, and the whole path from files to an
exported encoder that plain Keras loads."""

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from simclr_lab.config import SettingError
from simclr_lab.evaluate import encode
from simclr_lab.faces import cli
from simclr_lab.runs.presets import get_preset
from simclr_lab.sources import data, folder
from simclr_lab.sources.data import load_splits

SIZES = [(40, 40), (64, 48), (30, 50), (33, 33)]  # (width, height): every image is resized
MODES = ["RGB", "L", "RGBA", "P"]


def _image(rng, mode: str, size) -> Image.Image:
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype="uint8")
    image = Image.fromarray(pixels)
    if mode == "RGBA":
        return image.convert("RGBA")
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return image.convert(mode)


def write_images(where, count: int, seed: int = 0) -> list:
    """`count` images in `where`, PNG and JPEG in turn, of mixed sizes and modes (JPEG has
    no palette or alpha, so those are written as PNG)."""
    where.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(count):
        mode, size = MODES[i % len(MODES)], SIZES[i % len(SIZES)]
        suffix = "jpg" if i % 2 and mode in ("RGB", "L") else "png"
        name = f"img{i:03d}.{suffix}"
        _image(rng, mode, size).save(where / name)
        names.append(name)
    return names


def add_bad_files(where) -> None:
    """A corrupt PNG (a PNG signature, then noise) and a text file."""
    (where / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (where / "notes.txt").write_text("not an image\n")


@pytest.fixture
def class_folder(tmp_path):
    root = tmp_path / "pets"
    for index, name in enumerate(["cats", "dogs", "fish"]):
        write_images(root / name, 14, seed=index)
    add_bad_files(root / "dogs")
    return root


@pytest.fixture
def flat_folder(tmp_path):
    root = tmp_path / "holiday"
    write_images(root, 40, seed=3)
    add_bad_files(root)
    (root / ".ipynb_checkpoints").mkdir()  # hidden: passed over silently
    return root


def snapshot(root) -> dict:
    """Every file and folder under `root` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def folder_config(path, **changes):
    settings = {
        **folder.folder_settings(path),
        "data.labels_per_class": 4,
        "pretrain.epochs": 1,
        "pretrain.batch_size": 16,
        "pretrain.labelled_per_step": 4,
        "supervised.epochs": 1,
        "supervised.batch_size": 8,
        **changes,
    }
    return get_preset("smoke", **settings)


# ---------------------------------------------------------------- scanning and decoding


def test_scan_finds_classes_or_a_flat_folder(class_folder, flat_folder):
    (class_folder / "README.txt").write_text("my pets\n")  # beside the class folders
    classes = folder.scan_folder(class_folder)
    assert classes.passed_over == ("README.txt",)
    assert classes.class_names == ("cats", "dogs", "fish")
    assert list(classes.files) == sorted(classes.files)
    assert np.bincount(classes.labels).tolist() == [14, 16, 14]  # dogs/ holds the bad files
    flat = folder.scan_folder(flat_folder)
    assert flat.labels is None and flat.class_names == ()
    assert len(flat.files) == 42 and not any(n.startswith(".") for n in flat.files)


def test_decoding_makes_rgb_of_every_mode_and_skips_what_is_no_image(tmp_path):
    root = tmp_path / "modes"
    root.mkdir()
    Image.new("L", (50, 40), 77).save(root / "a_grey.png")
    Image.new("RGBA", (40, 40), (10, 200, 30, 0)).save(root / "b_transparent.png")
    Image.new("RGBA", (40, 40), (10, 200, 30, 255)).save(root / "c_opaque.png")
    palette = Image.new("RGB", (64, 64), (250, 5, 5)).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.save(root / "d_palette.png")
    Image.new("RGB", (90, 30), (0, 0, 255)).save(root / "e_wide.jpg", quality=100)
    add_bad_files(root)
    with pytest.warns(folder.UnreadableImagesWarning) as caught:
        decoded = folder.load_folder(root, 32, tmp_path / "cache", log=lambda _: None)
    message = str(caught[0].message)
    assert "2 of the 7 files" in message and "broken.png" in message and "notes.txt" in message
    assert isinstance(decoded.images, np.memmap)
    assert decoded.images.shape == (5, 32, 32, 3) and decoded.images.dtype == np.uint8
    centre = decoded.images[:, 16, 16].astype(int)
    assert centre[0].tolist() == [77, 77, 77]  # grey repeated
    assert centre[1].tolist() == [255, 255, 255]  # transparent: white
    assert centre[2].tolist() == [10, 200, 30]
    assert centre[3].tolist() == [250, 5, 5]  # palette expanded
    assert np.abs(centre[4] - [0, 0, 255]).max() <= 3  # JPEG
    names = ("a_grey.png", "b_transparent.png", "c_opaque.png", "d_palette.png", "e_wide.jpg")
    assert decoded.files == names


def test_decoding_happens_once_and_a_changed_folder_is_decoded_again(flat_folder, tmp_path):
    cache, lines = tmp_path / "cache", []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", folder.UnreadableImagesWarning)
        first = folder.load_folder(flat_folder, 32, cache, log=lines.append)
        again = folder.load_folder(flat_folder, 32, cache, log=lines.append)
        assert len(lines) == 1  # the second load read the cache
        np.testing.assert_array_equal(first.images, again.images)
        write_images(flat_folder / "..", 1, seed=9)  # outside the folder: no change
        folder.load_folder(flat_folder, 32, cache, log=lines.append)
        assert len(lines) == 1
        (flat_folder / "img000.png").unlink()
        changed = folder.load_folder(flat_folder, 32, cache, log=lines.append)
    decoded = [line for line in lines if line.startswith("Decoding")]
    assert len(decoded) == 2 and len(changed.images) == len(first.images) - 1


def test_class_folder_splits_hold_out_a_fifth_and_draw_balanced_labels(class_folder, tmp_path):
    config = folder_config(class_folder)
    with pytest.warns(folder.UnreadableImagesWarning):
        splits = load_splits(config.data, tmp_path / "cache")
    assert splits.source == "folder" and splits.has_labels
    assert splits.class_names == ("cats", "dogs", "fish")
    assert len(splits.unlabelled) == 42  # every readable image, the test ones too
    assert np.bincount(splits.labelled_labels).tolist() == [4, 4, 4]
    assert np.bincount(splits.test_labels).tolist() == [3, 3, 3]  # round(14 / 5)
    pooled = {bytes(x) for x in splits.labelled_images}
    assert not pooled & {bytes(x) for x in splits.test_images}


# ---------------------------------------------------------------- bad input, before training


def _refused(path, capsys, *extra):
    """The CLI's status and its one error line, for `pretrain --data path`."""
    before = snapshot(path) if path.is_dir() else None
    out = path.parent / "out"
    status = cli.main(
        ["pretrain", "--data", str(path), "--preset", "smoke", "--out", str(out), *extra]
    )
    error = capsys.readouterr().err.strip().splitlines()
    if before is not None:
        assert snapshot(path) == before  # nothing in the folder was touched
    return status, error


def test_missing_and_empty_folders_are_refused(tmp_path, capsys):
    status, error = _refused(tmp_path / "nowhere", capsys)
    assert status == 2 and "does not exist" in error[-1]
    (tmp_path / "empty").mkdir()
    status, error = _refused(tmp_path / "empty", capsys)
    assert status == 2 and "is empty" in error[-1]


def test_a_folder_without_a_readable_image_is_refused(tmp_path, capsys):
    root = tmp_path / "junk"
    root.mkdir()
    add_bad_files(root)
    status, error = _refused(root, capsys, "--cache-dir", str(tmp_path / "cache"))
    assert status == 2 and "holds no image" in error[-1]
    assert "broken.png" in error[-1] and "notes.txt" in error[-1]


def test_a_class_too_small_for_the_labels_asked_is_named(class_folder, tmp_path, capsys):
    for extra in sorted((class_folder / "fish").iterdir())[3:]:
        extra.unlink()  # fish/ keeps 3 images: 1 for testing, 2 for labels
    args = ["--set", "data.labels_per_class=5", "--cache-dir", str(tmp_path / "cache")]
    status, error = _refused(class_folder, capsys, *args)
    assert status == 2 and "fish/ (3 files, 2 left)" in error[-1]
    assert "data.labels_per_class=2" in error[-1]
    assert not (tmp_path / "cache").exists()  # refused before any decoding


def test_mixed_depths_and_a_single_class_folder_are_refused(tmp_path, capsys):
    mixed = tmp_path / "mixed"
    write_images(mixed, 3)
    write_images(mixed / "cats", 3)
    status, error = _refused(mixed, capsys)
    assert status == 2 and "mixes depths" in error[-1] and "img000.png" in error[-1]
    nested = tmp_path / "nested"
    write_images(nested / "cats", 3)
    write_images(nested / "dogs" / "puppies", 3)
    status, error = _refused(nested, capsys)
    assert status == 2 and "dogs/puppies/" in error[-1]
    single = tmp_path / "single"
    write_images(single / "all", 3)
    status, error = _refused(single, capsys)
    assert status == 2 and "single subfolder" in error[-1]


def test_an_image_size_below_the_encoders_minimum_is_refused(flat_folder, capsys):
    status, error = _refused(flat_folder, capsys, "--set", "data.image_size=16")
    assert status == 2 and "image_size" in error[-1] and "16" in error[-1]


def test_outputs_inside_the_folder_are_refused(flat_folder, capsys):
    before = snapshot(flat_folder)
    status = cli.main(
        ["pretrain", "--data", str(flat_folder), "--preset", "smoke"]
        + ["--out", str(flat_folder / "run")]
    )
    assert status == 2 and "inside data.folder" in capsys.readouterr().err
    assert snapshot(flat_folder) == before


def test_folder_settings_are_checked():
    with pytest.raises(SettingError, match="folder"):
        get_preset("smoke", **{"data.source": "folder"})
    with pytest.raises(SettingError, match="source=folder"):
        get_preset("smoke", **{"data.folder": "/tmp/x"})
    one = get_preset("smoke", **folder.folder_settings("/a"))
    other = get_preset("smoke", **folder.folder_settings("/b"))
    assert one.key_dict() == other.key_dict()  # keyed by content, not by path


# ---------------------------------------------------------------- the whole path

LOAD_EXPORT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    model = keras.saving.load_model(sys.argv[1])
    features = model.predict(np.load(sys.argv[2]), verbose=0)
    assert not any(name.startswith("simclr_lab") for name in sys.modules), "simclr_lab imported"
    np.save(sys.argv[3], features)
    """
)


@pytest.mark.slow
def test_pretrain_writes_gallery_map_and_an_encoder_plain_keras_loads(
    class_folder, tmp_path, capsys
):
    before = snapshot(class_folder)
    out, export, cache = tmp_path / "run", tmp_path / "encoder.keras", tmp_path / "cache"
    args = ["pretrain", "--data", str(class_folder), "--preset", "smoke", "--quiet"]
    args += ["--out", str(out), "--export", str(export), "--cache-dir", str(cache)]
    settings = ["data.labels_per_class=4", "pretrain.batch_size=16"]
    settings += ["pretrain.labelled_per_step=4", "pretrain.epochs=1"]
    for setting in settings:
        args += ["--set", setting]
    assert cli.main(args) == 0
    printed = capsys.readouterr()
    assert "2 of the 44 files" in printed.err and "broken.png" in printed.err
    assert (out / "gallery.png").stat().st_size > 10_000
    assert (out / "map.png").stat().st_size > 10_000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] and len(metrics["pretraining"]["history"]["c_loss"]) == 1
    assert snapshot(class_folder) == before

    # the same run, loaded from the cache, gives the encoder the export must reproduce
    config = folder_config(class_folder)
    from simclr_lab.runs import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", folder.UnreadableImagesWarning)
        splits = load_splits(config.data, cache)
    result = train.pretrain(config, splits, cache, verbose=0)
    assert result.from_cache
    images = np.asarray(splits.test_images)
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "load.py"
    script.write_text(LOAD_EXPORT)
    loaded = subprocess.run(
        [sys.executable, str(script), str(export), str(tmp_path / "images.npy")]
        + [str(tmp_path / "features.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(tmp_path)},
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    features = np.load(tmp_path / "features.npy")
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, encode(result.model.encoder, images), atol=1e-5)


def test_compare_on_a_flat_folder_pretrains_only_and_says_why(flat_folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["compare", "--data", str(flat_folder), "--preset", "smoke", "--quiet"]
    args += ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    args += ["--set", "pretrain.batch_size=16", "--set", "pretrain.labelled_per_step=4"]
    args += ["--set", "pretrain.epochs=1"]
    assert cli.main(args) == 0
    printed = capsys.readouterr()
    assert "no class folders" in printed.out and "supervised baseline" in printed.out
    assert "no class folders" in (out / "table.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] is False and "phases" not in metrics
    assert sorted(metrics["pretraining"]["history"]) == ["c_acc", "c_loss"]
    assert (out / "gallery.png").is_file() and (out / "map.png").is_file()


def test_the_demo_folder_is_png_and_jpeg_per_class_and_never_overwrites(tmp_path):
    root = data.write_demo_folder(tmp_path / "demo", per_class=4, source="synthetic")
    scan = folder.scan_folder(root)
    assert len(scan.class_names) == 10 and np.bincount(scan.labels).tolist() == [4] * 10
    suffixes = {name.rsplit(".", 1)[1] for name in scan.files}
    assert suffixes == {"png", "jpg"}
    before = snapshot(root)
    data.write_demo_folder(root, per_class=4, source="synthetic")  # already there
    assert snapshot(root) == before
    with pytest.raises(FileExistsError):
        data.write_demo_folder(root, per_class=5, source="synthetic")
    assert snapshot(root) == before


@pytest.mark.slow
def test_compare_on_class_folders_runs_every_phase(class_folder, tmp_path, capsys):
    before = snapshot(class_folder)
    out = tmp_path / "run"
    args = ["compare", "--data", str(class_folder), "--preset", "smoke", "--quiet"]
    args += ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    for setting in ("data.labels_per_class=4", "pretrain.batch_size=16"):
        args += ["--set", setting]
    args += ["--set", "pretrain.labelled_per_step=4", "--set", "supervised.batch_size=8"]
    assert cli.main(args) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["phases"]) == ["baseline", "finetuning", "pretraining"]
    assert "folder: 42 unlabelled, 12 labelled (4 a class), 9 test images" in metrics["data"]
    assert "simclr encoder" in metrics["frozen_features"]
    assert snapshot(class_folder) == before


def test_the_export_computes_in_float32_whatever_the_encoder_trained_in():
    import keras

    from simclr_lab.encoder import get_encoder, standalone_encoder

    keras.utils.set_random_seed(0)
    trained = get_encoder(16, 32, "mixed_bfloat16")
    exported = standalone_encoder(trained, 32)
    assert {layer.dtype_policy.name for layer in exported.layers[-1].layers} == {"float32"}
    full = get_encoder(16, 32, "float32")
    full.set_weights(trained.get_weights())
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype="uint8")
    features = keras.ops.convert_to_numpy(exported(images))
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, encode(full, images), atol=1e-5)


def test_files_are_cropped_and_resized_as_the_exported_model_does(tmp_path):
    import keras

    root = tmp_path / "shapes"
    root.mkdir()
    rng = np.random.default_rng(1)
    sizes = [(90, 30), (31, 77), (64, 48), (200, 101)]
    for index, (width, height) in enumerate(sizes):
        pixels = rng.integers(0, 256, (height, width, 3), dtype="uint8")
        Image.fromarray(pixels).save(root / f"{index}.png")
    decoded = folder.load_folder(root, 32, tmp_path / "cache", log=lambda _: None)
    resizing = keras.layers.Resizing(32, 32, crop_to_aspect_ratio=True, antialias=True)
    for index in range(len(sizes)):
        original = np.asarray(Image.open(root / f"{index}.png"), dtype="float32")
        expected = np.round(keras.ops.convert_to_numpy(resizing(original)))
        np.testing.assert_array_equal(decoded.images[index], np.clip(expected, 0, 255))


# ---------------------------------------------------------------- what a hostile probe found


def _load_quietly(root, cache, lines=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", folder.UnreadableImagesWarning)
        return folder.load_folder(root, 32, cache, log=(lines if lines is not None else []).append)


def test_a_file_replaced_with_its_size_and_mtime_kept_is_decoded_again(tmp_path):
    root = tmp_path / "photos"
    write_images(root, 6)
    target = root / "img000.png"
    before = _load_quietly(root, tmp_path / "cache")
    stamp = target.stat()
    replacement = tmp_path / "other.png"
    Image.new("RGB", (40, 40), (0, 255, 0)).save(replacement)
    padded = replacement.read_bytes().ljust(stamp.st_size, b"\0")[: stamp.st_size]
    assert len(padded) == stamp.st_size  # PNG ignores bytes after its end
    target.write_bytes(padded)
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # as cp -p or touch -r
    assert target.stat().st_size == stamp.st_size
    assert target.stat().st_mtime_ns == stamp.st_mtime_ns
    lines = []
    after = _load_quietly(root, tmp_path / "cache", lines)
    assert lines and "Decoding" in lines[0]  # not the old pixels from the cache
    assert after.images[0, 16, 16].tolist() == [0, 255, 0]
    assert not np.array_equal(before.images[0], after.images[0])
    assert any("Removed" in line for line in lines)  # the stale copy does not pile up
    assert len(list((tmp_path / "cache" / "folders").iterdir())) == 1


def test_a_cache_inside_the_image_folder_is_refused_and_nothing_is_written(tmp_path):
    root = tmp_path / "photos"
    write_images(root, 4)
    before = snapshot(root)
    with pytest.raises(folder.FolderError, match="cache_folder=.*is inside data.folder"):
        folder.load_folder(root, 32, root / "cache", log=lambda _: None)
    assert snapshot(root) == before


def test_a_gif_transparent_colour_decodes_white_and_exif_orientation_is_applied(tmp_path):
    root = tmp_path / "formats"
    root.mkdir()
    gif = Image.new("P", (40, 40), 0)
    gif.putpalette([0, 0, 0, 200, 20, 20] + [0] * 762)  # index 0 black, 1 red
    gif.paste(1, (0, 0, 40, 10))  # a red band at the top; the rest is index 0
    gif.save(root / "a.gif", transparency=0)
    photo = Image.new("RGB", (40, 40), (0, 0, 255))
    photo.paste((255, 0, 0), (0, 0, 20, 40))  # stored: red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: red on top
    photo.save(root / "b.jpg", quality=100, exif=exif)
    decoded = _load_quietly(root, tmp_path / "cache")
    assert decoded.images[0, 24, 16].tolist() == [255, 255, 255]  # transparent: white
    assert np.abs(decoded.images[0, 1, 16].astype(int) - [200, 20, 20]).max() <= 2
    upright = decoded.images[1].astype(int)
    assert np.abs(upright[3, 16] - [255, 0, 0]).max() <= 10  # top: red
    assert np.abs(upright[28, 16] - [0, 0, 255]).max() <= 10  # bottom: blue


def test_pipes_links_and_unreadable_files_are_skipped_and_named(tmp_path):
    root = tmp_path / "odd"
    write_images(root, 3)
    os.mkfifo(root / "pipe.png")  # opening it would wait forever
    (root / "gone.png").symlink_to(root / "nowhere.png")
    (root / "loop.png").symlink_to(root / "loop.png")
    locked = root / "locked.png"
    Image.new("RGB", (40, 40)).save(locked)
    locked.chmod(0)
    readable = os.access(locked, os.R_OK)  # root reads it anyway
    loaded = []
    worker = threading.Thread(target=lambda: loaded.append(_skipped(root, tmp_path)))
    worker.start()
    worker.join(timeout=300)
    assert loaded, "decoding a folder with a pipe in it did not finish"
    decoded, message = loaded[0]
    assert len(decoded.images) == 3 + readable
    assert "pipe.png (not a regular file" in message
    assert "gone.png (a broken link" in message and "loop.png (a broken link" in message
    if not readable:
        assert "locked.png (cannot be read" in message


def _skipped(root, tmp_path):
    with pytest.warns(folder.UnreadableImagesWarning) as caught:
        decoded = folder.load_folder(root, 32, tmp_path / "cache", log=lambda _: None)
    return decoded, str(caught[0].message)


def test_a_full_disk_is_refused_before_decoding(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    write_images(root, 4)
    full = shutil.disk_usage(tmp_path)._replace(free=1 << 20)
    monkeypatch.setattr(folder.shutil, "disk_usage", lambda path: full)
    with pytest.raises(folder.FolderError, match="decoding needs .* MB .* free"):
        folder.load_folder(root, 128, tmp_path / "cache", log=lambda _: None)
    assert not list((tmp_path / "cache" / "folders").glob(".*"))  # no temporary folder left


def test_a_disk_that_fills_while_decoding_is_an_error_not_a_crash(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    write_images(root, 4)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(folder.os, "posix_fallocate", no_space)
    with pytest.raises(folder.FolderError, match="no room for the decoded images"):
        folder.load_folder(root, 32, tmp_path / "cache", log=lambda _: None)
    assert not list((tmp_path / "cache" / "folders").glob(".*"))


def test_decoded_folders_have_the_usual_mode_and_abandoned_ones_are_removed(tmp_path):
    root = tmp_path / "photos"
    write_images(root, 4)
    cache = tmp_path / "cache" / "folders"
    cache.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    ).stdout.strip()
    abandoned = cache / f".abc-32px-v{folder.CACHE_FORMAT}.{dead}.xyz"
    abandoned.mkdir()  # a decoding killed mid-way
    _load_quietly(root, tmp_path / "cache")
    assert not abandoned.exists()
    (entry,) = cache.iterdir()
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o777 & ~mask


def test_a_demo_folder_written_before_a_decoding_change_is_still_the_demo(tmp_path):
    root = data.write_demo_folder(tmp_path / "demo", per_class=4, source="synthetic")
    marker = json.loads((root / folder.DEMO_MARKER).read_text())
    assert marker["format"] == 1  # what every demo folder written so far says
    assert data.write_demo_folder(root, per_class=4, source="synthetic") == root
