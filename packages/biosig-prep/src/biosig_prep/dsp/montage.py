"""The EEG stream's channels, decided before any record is converted, and each file placed in
them by name.

An EEG stream holds one channel set (one column per channel in ``windows``). It is decided once
per run, before any record is read (:func:`decide_eeg_channels`):

(the rules are pure functions here; the header walk is
:func:`biosig_prep.readers.edf_header.decide_eeg_channels`)

1. **Declared**: ``PrepConfig.eeg_channels`` (a montage) when the config gives one.
2. **Otherwise from every file's header** (header only, no signal read; see
   :mod:`biosig_prep.readers.edf_header`): a channel belongs to the stream when **more than half**
   of the files with EEG channels hold it (names matched case-insensitively, surrounding spaces
   ignored); in the order of the most common layout among the files (ties: the first file in
   sorted order), channels outside that layout appended in order of first appearance. When no
   channel is held by more than half of the files, the **union** of all files' channels is
   used. A channel is stored under its most common spelling. One file decides nothing by sort
   order: a renamed or reordered file is outvoted.

Each file is then placed by name (:func:`place_eeg_channels`): channel order in the file does
not matter; a stream channel the file lacks is zero-filled and False in ``channel_mask``
(named in the record's metadata as ``missing_channels``); a file channel outside the stream is
left out (named as ``dropped_channels``). A file that holds **fewer than half** of the stream's
channels cannot be placed and is skipped with a reason naming its channels and the stream's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["eeg_channel_key", "decide_from_layouts", "place_eeg_channels",
           "ChannelPlacementError", "MIN_PLACED_FRACTION"]

MIN_PLACED_FRACTION = 0.5  # a file must hold at least this share of the stream's channels


class ChannelPlacementError(ValueError):
    """A file whose EEG channels cannot be placed in the stream's channel set."""


def eeg_channel_key(name: str) -> str:
    """The form EEG channel names are matched in: case-folded, surrounding spaces removed."""
    return name.strip().casefold()


def decide_from_layouts(layouts: Sequence[Sequence[str]]) -> tuple[list[str], str]:
    """The stream's channels from the EEG channel lists of several files (module docstring,
    rule 2); returns ``(channels, rule)`` with ``rule`` ``"majority"`` or ``"union"``."""
    layouts = [list(lay) for lay in layouts if lay]
    if not layouts:
        return [], "none"
    spellings: dict[str, Counter] = {}  # key -> how often each spelling occurs (first: ties)
    counts: Counter = Counter()
    for lay in layouts:
        keys = []
        for name in lay:
            key = eeg_channel_key(name)
            spellings.setdefault(key, Counter())[name.strip()] += 1
            if key not in keys:
                keys.append(key)
        counts.update(keys)
    n = len(layouts)
    chosen = {k for k, c in counts.items() if 2 * c > n}
    rule = "majority"
    if not chosen:
        chosen, rule = set(counts), "union"
    modal = Counter(tuple(eeg_channel_key(x) for x in lay) for lay in layouts)
    top = max(modal.values())
    first_top = next(tuple(eeg_channel_key(x) for x in lay) for lay in layouts
                     if modal[tuple(eeg_channel_key(x) for x in lay)] == top)
    order = [k for k in dict.fromkeys(first_top) if k in chosen]
    for lay in layouts:
        for name in lay:
            key = eeg_channel_key(name)
            if key in chosen and key not in order:
                order.append(key)
    return [spellings[k].most_common(1)[0][0] for k in order], rule


def place_eeg_channels(channels: Sequence[str], stream: Sequence[str]
                       ) -> tuple[list[int | None], list[str], list[str]]:
    """Where each stream channel comes from in a file with ``channels``, by name.

    Returns ``(found, missing, dropped)``: ``found[k]`` the file's row of ``stream[k]`` (None:
    missing, zero-filled and masked); the stream channels the file lacks; the file's channels
    outside the stream. Raises :class:`ChannelPlacementError` when the file holds fewer than
    :data:`MIN_PLACED_FRACTION` of the stream's channels.
    """
    rows: dict[str, int] = {}
    for i, name in enumerate(channels):
        rows.setdefault(eeg_channel_key(name), i)
    found = [rows.get(eeg_channel_key(name)) for name in stream]
    missing = [name for name, row in zip(stream, found, strict=True) if row is None]
    wanted = {eeg_channel_key(s) for s in stream}
    dropped = [c for c in channels if eeg_channel_key(c) not in wanted]
    placed = len(stream) - len(missing)
    if placed == 0 or placed < MIN_PLACED_FRACTION * len(stream):
        def short(names: Sequence[str]) -> str:
            names = list(names)
            return str(names if len(names) <= 6 else [*names[:5], f"... ({len(names)})"])
        raise ChannelPlacementError(
            f"channels: the file's EEG channels {short(channels)} hold {placed} of the stream's "
            f"{len(stream)} {short(stream)}; declare eeg_channels in the config to decide the "
            "stream's channels, or convert this file into a store of its own")
    return found, missing, dropped
