"""``biosig-prep convert``: source files in, a complete store out; parallel and resumable.

How a run goes
--------------
1. **Plan.** :func:`~biosig_prep.readers.discover` lists the sources (path-sorted); they are
   cut into batches of ``batch_size`` consecutive files and at most ``batch_bytes`` of input
   (long records make short batches, so the workers' shares stay even; a DREAMER file is a
   batch of its own: the ``.mat`` is read once and its trials are processed on a thread pool). The sources, the
   config, the layout settings and the package version give the run's *fingerprint*.
2. **Process** (parallel: one task per batch). A batch task reads and processes its records one
   at a time and encodes every window exactly as it will sit in its shard (Blosc, one window
   per chunk). The encoded windows stay in the worker's memory, unless the batch outgrows
   ``memory_bytes``: then they are *spilled* to ``_convert/b<batch>/data/``. A record that
   cannot be read or fails QC gets a ``records/`` row with the reason as its status; it never
   stops the batch.
3. **Admit** (the driver, in plan order). Window counts are only known after processing, so the
   driver admits finished batches in plan order (the *frontier*): an admitted batch gets its
   final window offsets in every stream (prefix sums) and its ``records/`` rows are written.
   Nothing is predicted from headers; a failed record simply contributes no windows, so the
   counts are exact and there are no gaps. At most ``lookahead`` batches run ahead of the
   frontier.
4. **Write blocks** (parallel: one task per block). A block is a run of whole shards
   (``block_size`` windows, a multiple of the shard size K) whose windows have all been
   admitted. Its task receives the batches' data it needs (dask moves it if it lives on
   another worker), writes complete shard objects and the block's whole chunks of ``record``,
   ``start``, ``channel_mask`` (and ``labels/``), then the marker
   ``_convert/blocks/<stream>/<block>``. Blocks are aligned to shards and chunks, so parallel
   writers never write the same object, and workers never touch metadata. Data that waits for
   its block longer than ``spill_age`` admitted batches (a slowly filling low-rate stream) is
   spilled, so memory stays flat. Once all of a batch's windows are in written blocks or
   spilled, the driver writes the batch's marker ``_convert/b<batch>/done.json`` (its rows and
   window counts).
5. **Finish.** Array lengths and the summary are set, the staging group is deleted, and only
   then ``complete = True`` is written.

Where each phase lives: :mod:`~biosig_prep.convert.plan` (1: batches, :class:`Layout`, the
fingerprint, the summary), :mod:`~biosig_prep.convert.stage` (2: processing a batch, its encoded
windows in memory or spilled as part files), :mod:`~biosig_prep.convert.driver` (3: admission,
blocks, durability), :mod:`~biosig_prep.convert.blocks` (4: writing a block),
:mod:`~biosig_prep.convert.run` (5 and the entry point :func:`convert`), and
:mod:`~biosig_prep.convert.executors` (where tasks run, behind the :class:`Executor` protocol the
driver is given). :mod:`~biosig_prep.convert.types` is the package's internal contract: the
plain types and functions its modules share (``Batch``, ``RunSpec``, ``Piece``, ``Block``,
``io_for``, ...). Across modules only names without an underscore are used (each module's
``__all__`` lists its own); a name with one is private to its module.

Resume: a killed run leaves ``complete = False`` and its markers. Rerunning the same command
(same fingerprint) reads the batch markers (those batches are not processed again), skips the
blocks whose markers exist, and does the rest. A batch has a marker only when its windows are
durable (in written blocks, or spilled), and every object's content is a deterministic function
of the plan, so the result equals an uninterrupted run's. A store of another fingerprint at the
destination is refused unless ``overwrite=True``.

Executors: ``workers=0`` runs everything in this process, one task at a time (tests,
debugging); ``workers=N`` starts a local dask.distributed cluster of N single-threaded worker
processes; ``scheduler=ADDRESS`` (or a ``Client``) runs on an existing dask cluster, whose
workers must see the sources and the destination URL. The default (``workers=None``) is one
worker per CPU core: processes forked from this one (:class:`~biosig_prep.convert.executors.
ForkExecutor`; a local destination, where fork exists): they start in milliseconds with the
modules already imported and process records without sharing a GIL, while this process admits
batches and writes blocks on one thread. Where fork is not available, the destination is a URL,
or this process runs other threads already (fork copies only the calling thread: a test
runner, an embedding application), the workers are threads of this process, a plain priority
thread pool (filters, resampling, compression and file I/O release the GIL, the per-record
Python code does not: ~1.2 of 2 cores busy). On a machine of at least
``AUTO_PROCESSES_MIN_CORES`` cores and a job of at least ``AUTO_PROCESSES_BYTES`` of input the
default is a local dask process cluster. A single batch runs in this process.
``processes=False`` forces threads, ``processes=True`` dask processes. The task graph is the
same whichever executor runs it, and so is the store, byte for byte.
"""

from biosig_prep.convert.plan import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    ConvertSummary,
    Layout,
    SkippedRecord,
    plan_batches,
)
from biosig_prep.convert.run import convert

__all__ = ["convert", "ConvertSummary", "SkippedRecord", "Layout", "plan_batches",
           "DEFAULT_BATCH_SIZE", "DEFAULT_BATCH_BYTES"]
