"""A folder of one's own images as a source: every image unlabelled, and class labels when
the folder holds one subfolder per class.

    my_images/          flat: no labels (pretraining only)
        a.jpg  b.png ...
    my_images/          one subfolder per class: labels for the probe, baseline, finetuning
        cats/ a.jpg ...
        dogs/ b.png ...

Files are scanned once, sorted, so every run sees them in the same order. Each image is
decoded (`decode`: JPEG, PNG, GIF, BMP, WebP; transparency over white, EXIF orientation
applied), centre-cropped to a square and resized, once, into a uint8 `.npy` file under the
cache folder (refused inside the image folder: nothing in it is ever written). Later epochs
and later runs read that file through a memory map (`np.load(mmap_mode="r")`), so memory
stays bounded whatever the folder's size. The cache entry is keyed by the file list, each
file's size, modification and change times and inode, and the image size: a changed folder
is decoded again, and the older copy of the same folder is removed once the new one is made.

Files that cannot be decoded or read (a pipe, a broken link, no permission) are skipped,
counted and named in one warning; hidden files and folders (".ipynb_checkpoints",
".DS_Store") are passed over silently. A full disk is refused before decoding starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simclr_lab.runs.cache import atomic_write_text, default_cache_dir
from simclr_lab.sources.decode import DecodeError, decoder, read_image_file

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
TEST_FRACTION, TEST_SEED = 0.2, 11  # a fixed fifth of every class is held out for testing
DECODE_CHUNK = 512  # images decoded between two flushes of the cache file
CACHE_FORMAT = 2  # bump when decoding changes, so old cache entries are not reused
SHOWN_NAMES = 10  # files named in a message; the rest are counted
DEMO_MARKER = ".simclr-lab-demo.json"


class FolderError(ValueError):
    """A folder of images cannot be used as it is; the message says why and what to do."""


class UnreadableImagesWarning(UserWarning):
    """Some files of a folder could not be decoded as images and were skipped."""


@dataclass(frozen=True)
class FolderScan:
    """What a folder holds, before any decoding: files relative to `root` (sorted), with their
    class when the folder has one subfolder per class."""

    root: Path
    files: tuple[str, ...]  # posix paths relative to root
    labels: tuple[int, ...] | None  # class index of each file; None: a flat folder
    class_names: tuple[str, ...]  # the class folders' names, sorted; () when flat
    passed_over: tuple[str, ...]  # non-image files beside the class folders, not read
    stamps: tuple[tuple[int, ...], ...]  # (size, mtime, ctime in ns, inode) of each file

    @property
    def key(self) -> str:
        """A hash of the file list and each file's size, modification and change times and
        inode: a file replaced by another, even of the same size and with its modification
        time copied (`cp -p`, `rsync -t`, `touch -r`), has another change time or inode."""
        text = json.dumps([self.files, self.stamps, self.class_names])
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _shown(names, limit: int = SHOWN_NAMES) -> str:
    names = list(names)
    more = f" and {len(names) - limit:,} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _visible(entries):
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _is_dir(entry) -> bool:
    """Whether an entry is a folder; a link loop is not (decoding names it as unreadable)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def scan_folder(path) -> FolderScan:
    """The images under `path`, flat or one subfolder per class; FolderError when the folder
    is missing, empty, of mixed depth, or has a single class folder."""
    root = Path(path).expanduser()
    if not root.is_dir():
        where = "is not a folder" if root.exists() else "does not exist"
        raise FolderError(f"data.folder={str(path)!r} {where}; point it at a folder of images.")
    with os.scandir(root) as it:
        top = _visible(it)
    folders = [e for e in top if _is_dir(e)]
    files = [e for e in top if not _is_dir(e)]
    if not top:
        raise FolderError(f"data.folder={str(path)!r} is empty; put image files in it.")
    if not folders:
        names = [e.name for e in files]
        return FolderScan(root, tuple(names), None, (), (), _stamps(root, names))
    images_on_top = [e.name for e in files if e.name.lower().endswith(IMAGE_SUFFIXES)]
    nested, class_files = [], {}
    for entry in folders:
        with os.scandir(entry.path) as it:
            inside = _visible(it)
        nested += [f"{entry.name}/{e.name}/" for e in inside if _is_dir(e)]
        class_files[entry.name] = [f"{entry.name}/{e.name}" for e in inside if not _is_dir(e)]
    if images_on_top or nested:
        found = [f"images at the top ({_shown(images_on_top)})"] if images_on_top else []
        found += [f"folders inside class folders ({_shown(nested)})"] if nested else []
        raise FolderError(
            f"data.folder={str(path)!r} mixes depths: it has class folders "
            f"({_shown(e.name + '/' for e in folders)}) and {' and '.join(found)}. Use either "
            "images directly in the folder (no labels) or one subfolder of images per class."
        )
    if len(folders) == 1:
        raise FolderError(
            f"data.folder={str(path)!r} has a single subfolder, {folders[0].name}/: one class "
            f"is no labelling. Point data.folder at {str(root / folders[0].name)!r} to "
            "pretrain without labels, or add a subfolder for each other class."
        )
    names, labels = [], []
    for index, entry in enumerate(folders):
        names += class_files[entry.name]
        labels += [index] * len(class_files[entry.name])
    passed_over = tuple(e.name for e in files)
    return FolderScan(
        root,
        tuple(names),
        tuple(labels),
        tuple(e.name for e in folders),
        passed_over,
        _stamps(root, names),
    )


def _stamps(root: Path, names) -> tuple[tuple[int, ...], ...]:
    stamps = []
    for name in names:
        try:
            info = (root / name).stat()
        except OSError:  # a broken link or a link loop: skipped when decoding, and named
            stamps.append((-1, -1, -1, -1))
            continue
        stamps.append((info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
    return tuple(stamps)


# ---------------------------------------------------------------- decoding, once, into a cache


def _cache_root(cache_dir) -> Path:
    return Path(cache_dir or default_cache_dir()) / "folders"


def _decode_into(scan: FolderScan, image_size: int, path: Path):
    """(images, kept, skipped): `scan`'s files decoded into a memory-mapped (N, S, S, 3)
    uint8 array at `path`, flushed a chunk at a time; kept: the indices of the files decoded
    (their rows come first), skipped: {name: why} of the others."""
    decode = decoder(image_size)
    shape = (len(scan.files), image_size, image_size, 3)
    images = np.lib.format.open_memmap(path, "w+", "uint8", shape)
    _allocate(path)
    kept, skipped = [], {}
    for index, name in enumerate(scan.files):
        contents = read_image_file(scan.root / name)
        if isinstance(contents, str):  # why it cannot be read
            skipped[name] = contents
            continue
        try:
            images[len(kept)] = decode(contents)
            kept.append(index)
        except DecodeError as error:
            skipped[name] = str(error)
        if index % DECODE_CHUNK == DECODE_CHUNK - 1:
            images.flush()
    return images, kept, skipped


def decode_folder(scan: FolderScan, image_size: int, cache_dir=None, log=print) -> Path:
    """The cache entry (a folder holding images.npy and index.json) of `scan` at
    `image_size`, decoded now if it is not there yet; the images are written a chunk at a
    time, never all held in memory."""
    check_outside(scan.root, cache_folder=_cache_root(cache_dir))
    entry = _cache_root(cache_dir) / f"{scan.key}-{image_size}px-v{CACHE_FORMAT}"
    if (entry / "index.json").is_file():
        return entry
    _remove_abandoned_temp_dirs(entry.parent)
    _check_free_space(entry.parent, len(scan.files) * image_size * image_size * 3)
    log(
        f"Decoding the {len(scan.files):,} files of {scan.root} at {image_size}x{image_size}, "
        f"once, into {entry} (later runs read that)."
    )
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(_make_temp_dir(entry))
    except OSError as error:
        raise FolderError(
            f"the decoded images go to {entry.parent}, which cannot be written "
            f"({error.strerror or error}); choose another cache folder (--cache-dir or "
            "$SIMCLR_LAB_CACHE)."
        ) from error
    try:
        images, kept, skipped = _decode_into(scan, image_size, temp / "all.npy")
        images.flush()
        if len(kept) < len(scan.files):  # drop the rows of skipped files
            _write_kept(images, len(kept), temp / "images.npy")
        del images
        if len(kept) < len(scan.files):
            (temp / "all.npy").unlink()
        else:
            os.replace(temp / "all.npy", temp / "images.npy")
        labels = None if scan.labels is None else [scan.labels[i] for i in kept]
        index = {
            "root": str(scan.root),
            "files": [scan.files[i] for i in kept],
            "labels": labels,
            "class_names": list(scan.class_names),
            "skipped": skipped,
            "image_size": image_size,
        }
        atomic_write_text(temp / "index.json", json.dumps(index))
        try:
            os.replace(temp, entry)
        except OSError:  # another process finished the same entry first
            shutil.rmtree(temp, ignore_errors=True)
        _remove_older_copies(entry, str(scan.root), image_size, log)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return entry


def _make_temp_dir(entry: Path) -> str:
    """A new folder beside `entry`, named with this process's id, with the usual mode."""
    import tempfile

    temp = tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}.{os.getpid()}.")
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temp, 0o777 & ~mask)  # mkdtemp makes it private (0700)
    return temp


def _remove_older_copies(entry: Path, root: str, image_size: int, log) -> None:
    """Remove the decoded copies of the same folder at the same size made before it changed:
    only `entry` can match the folder now, the others would only fill the disk."""
    for other in entry.parent.glob(f"*-{image_size}px-v{CACHE_FORMAT}"):
        try:
            same = (
                other != entry and json.loads((other / "index.json").read_text())["root"] == root
            )
        except (OSError, ValueError, KeyError):
            continue
        if same:
            shutil.rmtree(other, ignore_errors=True)
            log(f"Removed {other.name}, the decoded copy of {root} from before it changed.")


def _remove_abandoned_temp_dirs(root: Path) -> None:
    """Remove the temporary folders of decodings whose process is gone (killed mid-way)."""
    if not root.is_dir():
        return
    for temp in root.glob(".*-v*.*.*"):
        pid = temp.name.rsplit(".", 2)[-2]
        if temp.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(temp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:  # PermissionError: another user's, running
        return not isinstance(error, ProcessLookupError)
    return True


def _allocate(path: Path) -> None:
    """Reserve the file's blocks now, so a full disk is an error here and not a crash
    (SIGBUS) when a page of the memory map is first written."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as error:
        raise FolderError(
            f"no room for the decoded images in {path.parent} ({error.strerror or error}); "
            "free some space or choose another cache folder (--cache-dir or $SIMCLR_LAB_CACHE)."
        ) from error
    finally:
        os.close(fd)


def _check_free_space(folder: Path, needed: int) -> None:
    """FolderError, before decoding, when `folder`'s disk lacks room for the images."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed + (16 << 20):  # and some room for the index and the file system
        raise FolderError(
            f"decoding needs {needed / 1e6:,.0f} MB in {folder} and {free / 1e6:,.0f} MB are "
            "free; free some space or choose another cache folder (--cache-dir or "
            "$SIMCLR_LAB_CACHE)."
        )


def _write_kept(images: np.ndarray, count: int, path: Path) -> None:
    """The first `count` rows of `images` as their own .npy file, a chunk at a time."""
    out = np.lib.format.open_memmap(path, "w+", "uint8", (count, *images.shape[1:]))
    for start in range(0, count, DECODE_CHUNK):
        stop = min(start + DECODE_CHUNK, count)
        out[start:stop] = images[start:stop]
    out.flush()
    del out


@dataclass(frozen=True)
class DecodedFolder:
    """A folder's decoded images (N, S, S, 3) uint8, memory-mapped, and what was read."""

    images: np.ndarray
    labels: np.ndarray | None  # (N,) int32, or None for a flat folder
    files: tuple[str, ...]
    class_names: tuple[str, ...]
    skipped: dict  # {file: TensorFlow's reason}
    root: Path


def load_folder(path, image_size: int, cache_dir=None, log=print) -> DecodedFolder:
    """Scan, decode once (cached), and open the images of `path`; warns once, naming them,
    about files that are not images; FolderError when none is."""
    scan = scan_folder(path)
    entry = decode_folder(scan, image_size, cache_dir, log)
    index = json.loads((entry / "index.json").read_text())
    skipped = index["skipped"]
    unread = {**skipped, **dict.fromkeys(scan.passed_over, "not in a class folder")}
    if not index["files"]:
        raise FolderError(
            f"data.folder={str(path)!r} holds no image TensorFlow can decode (JPEG, PNG, GIF, "
            f"BMP, WebP): {len(unread):,} files, e.g. "
            + _shown(f"{name} ({why})" for name, why in unread.items())
        )
    if unread:
        warnings.warn(
            f"{len(unread):,} of the {len(scan.files) + len(scan.passed_over):,} files in "
            f"{scan.root} are skipped: "
            + _shown(f"{name} ({why})" for name, why in unread.items()),
            UnreadableImagesWarning,
            stacklevel=2,
        )
    labels = index["labels"]
    return DecodedFolder(
        np.load(entry / "images.npy", mmap_mode="r"),
        None if labels is None else np.asarray(labels, dtype="int32"),
        tuple(index["files"]),
        tuple(index["class_names"]),
        skipped,
        scan.root,
    )


# ---------------------------------------------------------------- splits


def folder_settings(path) -> dict:
    """The dotted settings that point a preset at a folder: source "folder", every image
    (a preset's num_unlabelled and num_test are for its own source)."""
    return {
        "data.source": "folder",
        "data.folder": str(Path(path).expanduser()),
        "data.num_unlabelled": None,
        "data.num_test": None,
    }


def check_outside(folder, **paths) -> None:
    """FolderError when an output path lies inside the data folder: nothing is written there."""
    root = Path(folder).expanduser().resolve()
    for name, path in paths.items():
        if path is None:
            continue
        target = Path(path).expanduser().resolve()
        if target == root or root in target.parents:
            hint = " (set by --cache-dir or $SIMCLR_LAB_CACHE)" if name == "cache_folder" else ""
            raise FolderError(
                f"{name}={str(path)!r}{hint} is inside data.folder={str(folder)!r}; nothing "
                f"is written into the folder of images: choose a {name} outside it."
            )


# ---------------------------------------------------------------- a demo folder
