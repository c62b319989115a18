"""The training input pipeline: EleEscan HDF5 files streamed into tf.data batches, sharded by rank.

The full fixed set is 200,000 x 15,625 floats (12.5 GB), so nothing here loads a data set:
a generator reads runs of consecutive events ("blocks", cheap for chunked, compressed HDF5),
applies the reference preprocessing (section 1.5) and hands them to tf.data, which shuffles
events in a buffer, batches with drop_remainder and prefetches behind the training step.

Sharding is by event, not by file. Each epoch the blocks of every file are permuted with the
epoch's seed (the same on every rank), laid end to end, and rank r takes the r-th of
`num_ranks` equal contiguous slices of that stream. So ranks see disjoint events, every rank has
the same number of events (a rank with fewer steps would leave Horovod's allreduce waiting), and
it works with more ranks than files (the 20 fixed-set files would otherwise cap a run at 20
ranks). The at most `num_ranks - 1` events left over, and the last partial batch of each rank,
are dropped that epoch; a new seed per epoch drops different ones.

`steps_per_epoch` answers how many batches a rank gets without reading any image: the event
counts come from the dataset shapes, and the angle set's selection (more than 0.2 GeV deposited)
from the files' `sum` key where it holds the raw sum (computed once per process otherwise).
"""
from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from reference_model import data
from reference_model.errors import InputError
from reference_model.showers import ANGLE, FIXED, IMAGE_SHAPES
from reference_model.specs import ModelSpec, get_spec

BLOCK_EVENTS = 64  # consecutive events read at once and kept together by the epoch permutation
SHUFFLE_BUFFER_BYTES = 128 << 20  # default event-shuffle buffer, per rank
PREFETCH_BATCHES = 4  # batches read ahead of the training step

Sources = data.DataSources  # a directory, file, glob, FileRange or a list of them


# ------------------------------------------------------------------------------------------------
# which events exist (no images read)
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _file_selection(path: str, start: int, stop: Optional[int], size: int, mtime_ns: int
                    ) -> tuple[str, np.ndarray]:
    """(geometry, indices of the events training uses) of one file range; cached per process
    (`size` and `mtime_ns` are in the key only so that a rewritten file is read again)."""
    with data.EventFile(path) as f:
        stop = f.n_events if stop is None else min(stop, f.n_events)
        if f.geometry == FIXED:
            return FIXED, np.arange(start, stop)
        keep = data.angle_keep_mask(f.raw_sums()[start:stop])
        return ANGLE, np.flatnonzero(keep) + start


def event_index(files: Sources) -> tuple[str, list[tuple[Path, np.ndarray]]]:
    """The geometry of `files` and, per file, the indices of the events training uses."""
    geometry, index = None, []
    for source in data.list_files(files):
        path, start, stop = data.source_range(source)
        stat = path.stat() if path.is_file() else None
        if stat is None:
            raise InputError(f"{path}: no such file")
        file_geometry, selected = _file_selection(str(path), start, stop, stat.st_size,
                                                  stat.st_mtime_ns)
        if geometry is not None and file_geometry != geometry:
            raise InputError(f"{source}: {file_geometry}-angle file among {geometry}-angle files; "
                             "keep one geometry per data set")
        geometry = file_geometry
        index.append((path, selected))
    return geometry, index


def events_per_rank(files: Sources, num_ranks: int = 1) -> int:
    """Training events each rank sees per epoch (equal on every rank)."""
    if num_ranks < 1:
        raise InputError(f"number of ranks {num_ranks}: must be at least 1")
    _, index = event_index(files)
    return sum(len(selected) for _, selected in index) // num_ranks


def steps_per_epoch(files: Sources, batch_size: int, num_ranks: int = 1) -> int:
    """Batches per rank per epoch: what `make_dataset` yields for one epoch."""
    if batch_size < 1:
        raise InputError(f"--batch {batch_size}: must be at least 1")
    return events_per_rank(files, num_ranks) // batch_size


# ------------------------------------------------------------------------------------------------
# one rank's events for one epoch
# ------------------------------------------------------------------------------------------------
def epoch_plan(index: list[tuple[Path, np.ndarray]], rank: int, num_ranks: int, seed: int,
               block_events: int = BLOCK_EVENTS) -> list[tuple[int, np.ndarray]]:
    """(file number, event indices) pieces this rank reads this epoch, in reading order."""
    blocks = [(i, selected[j:j + block_events])
              for i, (_, selected) in enumerate(index) for j in range(0, len(selected), block_events)]
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(blocks))
    sizes = np.array([len(blocks[k][1]) for k in order], dtype=np.int64)
    ends = np.cumsum(sizes)
    per_rank = int(ends[-1]) // num_ranks if len(ends) else 0
    lo, hi = rank * per_rank, (rank + 1) * per_rank
    plan = []
    for k, end, size in zip(order, ends, sizes):
        begin = end - size
        if end <= lo or begin >= hi:
            continue
        file_number, events = blocks[k]
        plan.append((file_number, events[max(lo - begin, 0):min(hi, end) - begin]))
    return plan


def _read_pieces(index: list[tuple[Path, np.ndarray]], plan: list[tuple[int, np.ndarray]],
                 geometry: str) -> Iterator[dict[str, np.ndarray]]:
    """Preprocessed arrays for each planned piece, reading one contiguous slab per piece."""
    opened: dict[int, data.EventFile] = {}
    try:
        for file_number, events in plan:
            f = opened.get(file_number)
            if f is None:
                f = opened[file_number] = data.EventFile(index[file_number][0])
            first, last = int(events[0]), int(events[-1]) + 1
            rows = events - first
            images = f.images(first, last)[rows]
            theta = f.angles(first, last)
            yield data.training_arrays(images, f.energies(first, last)[rows],
                                       None if theta is None else theta[rows], geometry)
    finally:
        for f in opened.values():
            f.close()


def _signature(geometry: str):
    import tensorflow as tf

    keys = ("image", "energy", "ecal") if geometry == FIXED else ("image", "energy", "theta", "ecal")
    shapes = {"image": (None, *IMAGE_SHAPES[geometry], 1)}
    return {k: tf.TensorSpec(shapes.get(k, (None, 1)), tf.float32) for k in keys}


def shuffle_buffer_events(geometry: str, batch_size: int, taken_batches: Optional[int] = None) -> int:
    """Events in a rank's shuffle buffer: 128 MB worth (at least a batch), or, for an epoch cut
    after `taken_batches`, no more than those batches hold. A buffer larger than what is drained
    is read for nothing: 64 emulated ranks would fill 64 x 2,048 events (8 GB) to train 80 each."""
    events = max(batch_size, SHUFFLE_BUFFER_BYTES // (4 * int(np.prod(IMAGE_SHAPES[geometry]))))
    return events if taken_batches is None else min(events, taken_batches * batch_size)


def make_dataset(files: Sources, benchmark_or_spec: Union[str, ModelSpec], batch_size: int,
                 rank: int = 0, num_ranks: int = 1, seed: int = 0,
                 shuffle_buffer: Optional[int] = None, epochs: int = 1):
    """This rank's training batches (the `reference_model.training` contract) as a tf.data.Dataset.

    Yields `steps_per_epoch(files, batch_size, num_ranks)` batches per epoch for `epochs` epochs;
    epoch k uses seed (seed, k) for both the block permutation and the event shuffle, so the
    same arguments give the same batches. `shuffle_buffer` is in events (default: 128 MB worth,
    `shuffle_buffer_events`).
    """
    import tensorflow as tf

    spec = get_spec(benchmark_or_spec) if isinstance(benchmark_or_spec, str) else benchmark_or_spec
    if not 0 <= rank < num_ranks:
        raise InputError(f"rank {rank} of {num_ranks}: need 0 <= rank < number of ranks")
    if epochs < 1:
        raise InputError(f"epochs {epochs}: must be at least 1 (make one dataset per epoch or more)")
    geometry, index = event_index(files)
    if geometry != spec.geometry:
        raise InputError(f"the data are {geometry}-angle showers but {spec.benchmark} trains on "
                         f"{spec.geometry}-angle showers; pass the matching data set")
    if steps_per_epoch(files, batch_size, num_ranks) < 1:
        raise InputError(f"{len(index)} file(s) hold too few training events for {num_ranks} rank(s) "
                         f"x batch {batch_size}; make more data (harness data synth) or lower the batch")
    if shuffle_buffer is None:
        shuffle_buffer = shuffle_buffer_events(geometry, batch_size)

    def one_epoch(epoch: int) -> tf.data.Dataset:
        epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
        plan = epoch_plan(index, rank, num_ranks, epoch_seed)
        pieces = tf.data.Dataset.from_generator(lambda: _read_pieces(index, plan, geometry),
                                                output_signature=_signature(geometry))
        return (pieces.unbatch()
                .shuffle(shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False)
                .batch(batch_size, drop_remainder=True))

    dataset = one_epoch(0)
    for epoch in range(1, epochs):
        dataset = dataset.concatenate(one_epoch(epoch))
    # No tf.data autotuning: its optimisation thread sleeps on a doubling period (10 ms ...
    # 10.24 s, 20.48 s, 40.96 s) and deleting an iterator waits for it to wake, which made
    # every epoch end on a multiple of 10.24 s. The reader is one Python generator, so there
    # is no parallelism to tune; a fixed read-ahead does the same job.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


@contextlib.contextmanager
def input_errors_surfaced() -> Iterator[None]:
    """Turn an InputError raised inside tf.data (a bad file met mid-epoch) back into itself.

    TensorFlow reports an exception from the reading generator as an InvalidArgumentError
    carrying the whole Python traceback; wrap the loop that iterates a `make_dataset` in this
    so the user gets the one-line InputError that names the file instead.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as err:
        found = re.search(r"reference_model\.errors\.InputError: (.+)", err.message or "")
        if found is None:
            raise
        raise InputError(found.group(1).strip()) from None
