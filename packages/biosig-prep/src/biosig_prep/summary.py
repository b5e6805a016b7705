"""``biosig-prep inspect``: what a store holds, for a person (:func:`render_text`) or a program
(:func:`describe_store`, JSON-able).

Counts come from the store itself (the ``records/`` table and the arrays), not only from the
summary the conversion wrote, so an interrupted store is described as far as it goes.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from biosig_prep.dsp.qc import amplitude_lines, source_amplitudes
from biosig_prep.store import STAGING, RawIO, open_raw_store, open_store

__all__ = ["describe_store", "render_text"]

_TOP_REASONS = 15


def describe_store(url: str, *, storage_options: dict | None = None) -> dict[str, Any]:
    """A JSON-able description of the store at ``url`` (complete or not).

    Keys: url, complete, schema, version, records {total, ok, skipped, skipped_reasons,
    sources}, streams {name: {modality, fs, units, channels, windows, window_shape,
    shard_size, records, masked_channel_fraction}}, labels {name: {count, values}} or None,
    bytes (on disk), summary (as the conversion wrote it), config, and for an unfinished
    conversion ``progress`` {batches, batches_done}.

    Raises :class:`biosig_prep.StoreError` if ``url`` is not a biosig-prep store.
    """
    store = open_store(url, allow_incomplete=True, storage_options=storage_options)
    records = store.records()
    status = records["status"]
    ok = int((status == "ok").sum())
    reasons = Counter(str(s) for s in status if s != "ok")
    out: dict[str, Any] = {
        "url": store.url,
        "complete": store.complete,
        "schema": store.schema,
        "version": store.version,
        "records": {
            "total": int(len(status)), "ok": ok, "skipped": int(len(status) - ok),
            "skipped_reasons": dict(reasons.most_common()),
            "sources": dict(Counter(str(s) for s in records["source"]).most_common()),
        },
        "streams": {},
        "labels": None,
        "summary": store.summary,
        "config": store.config,
        "amplitude": source_amplitudes(records["source"], status, records["metadata"]),
        "ecg_units_in": _ecg_units_in(records["metadata"]),
    }
    for name in store.stream_names:
        s = store.stream(name)
        n = len(s)
        rec = s.record[:] if n else []
        mask = s.channel_mask[:] if n else None
        pmask = s.patch_masks() if n else None
        out["streams"][name] = {
            "modality": s.modality, "fs": s.fs, "units": s.units, "channels": s.channels,
            "windows": n, "window_shape": list(s.window_shape), "shard_size": s.shard_size,
            "records": int(len(set(map(int, rec)))),
            "masked_channel_fraction": (float(1.0 - mask.mean()) if mask is not None
                                        and mask.size else 0.0),
            "padded_patch_fraction": (float(1.0 - pmask.mean()) if pmask is not None
                                      and pmask.size else 0.0),
            "padded_windows": int((~pmask).any(axis=1).sum()) if pmask is not None else 0,
            "encoding": s.encoding, "tail": s.tail,
            "window_labels": _label_counts(s),
        }
    labels = store.labels()
    if labels is not None:
        out["labels"] = {k: {"count": int(len(v)),
                             "values": {str(a): int(b) for a, b in
                                        sorted(Counter(v.tolist()).items())}}
                         for k, v in labels.items()}
    raw = RawIO(open_raw_store(url, storage_options, read_only=True))
    try:
        out["bytes"] = raw.size("")
    except (NotImplementedError, OSError):  # a store that cannot list sizes
        out["bytes"] = None
    if not store.complete:
        conversion = store.attrs.get("conversion") or {}
        done = [k for k in raw.list(f"{STAGING}/") if k.endswith("/done.json")]
        out["progress"] = {"batches": conversion.get("batches"), "batches_done": len(done)}
    return out


def _label_counts(stream: Any) -> dict[str, dict[str, int]]:
    """Per-window label -> {class name: windows} (``"unlabelled"`` for -1)."""
    out: dict[str, dict[str, int]] = {}
    for key, values in stream.window_labels().items():
        classes = stream.label_classes(key)
        counts = Counter(values.tolist())
        out[key] = {(classes[v] if 0 <= v < len(classes) else "unlabelled"): int(c)
                    for v, c in sorted(counts.items())}
    return out
def _ecg_units_in(metadata) -> dict[str, int]:
    """How many DREAMER records read their ECG as counts / as mV (``ecg_units_in`` and
    ``ecg_scale`` in their metadata), e.g. ``{"counts x 0.0041863": 414}``; {} for others."""
    seen: Counter = Counter()
    for text in metadata:
        try:
            meta = json.loads(str(text) or "{}")
        except ValueError:
            continue
        units = meta.get("ecg_units_in") if isinstance(meta, dict) else None
        if units:
            scale = meta.get("ecg_scale")
            seen[f"{units} x {scale:.5g}" if isinstance(scale, (int, float)) else str(units)] += 1
    return dict(seen.most_common())


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _channels(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 8 else (
        ", ".join(names[:4]) + ", ..., " + ", ".join(names[-2:]))


def _filter_text(f: dict[str, Any] | None) -> str:
    if not f:
        return "?"
    lo, hi = f.get("l_freq"), f.get("h_freq")
    band = (f"{lo:g}-{hi:g} Hz" if lo and hi else f"high-pass {lo:g} Hz" if lo
            else f"low-pass {hi:g} Hz" if hi else "no band-pass")
    return f"{band}, order {f.get('order')}, notch {f.get('notch')}"


def render_text(desc: dict[str, Any]) -> str:
    """The description as a short report a person reads."""
    lines: list[str] = []
    state = "complete" if desc["complete"] else "INCOMPLETE"
    lines.append(f"store    {desc['url']}")
    lines.append(f"         schema {desc['schema']}, biosig-prep {desc['version']}, {state}, "
                 f"{_size(desc.get('bytes'))} on disk")
    if not desc["complete"]:
        p = desc.get("progress") or {}
        lines.append(f"         conversion unfinished ({p.get('batches_done', 0)} of "
                     f"{p.get('batches', '?')} batches done); rerun the same `biosig-prep "
                     "convert` command to resume it")
    r = desc["records"]
    lines.append("")
    lines.append(f"records  {r['total']} in, {r['ok']} ok, {r['skipped']} skipped")
    if r["sources"]:
        lines.append("  sources: " + ", ".join(f"{k} {v}" for k, v in r["sources"].items()))
    if r["skipped_reasons"]:
        lines.append("  skipped:")
        items = list(r["skipped_reasons"].items())
        for reason, count in items[:_TOP_REASONS]:
            lines.append(f"    {count:>6}  {reason}")
        if len(items) > _TOP_REASONS:
            rest = sum(c for _, c in items[_TOP_REASONS:])
            lines.append(f"    {rest:>6}  ({len(items) - _TOP_REASONS} other reasons)")
    lines += amplitude_lines(desc.get("amplitude") or {})
    problems = (desc.get("summary") or {}).get("problems") or []
    if problems:
        lines.append("  inputs that gave no record:")
        lines += [f"    {p}" for p in problems]
    lines.append("")
    if desc["streams"]:
        lines.append("streams")
        width = max(len(n) for n in desc["streams"])
        for name, s in desc["streams"].items():
            c, p, n = s["window_shape"]
            lines.append(
                f"  {name:<{width}}  {s['windows']:>8} windows of {c}x{p}x{n}  from "
                f"{s['records']} records  {s['fs']} Hz  {s['units']}  shard {s['shard_size']}"
                + (f"  masked {100 * s['masked_channel_fraction']:.1f}% of channels"
                   if s["masked_channel_fraction"] else "")
                + f"  padded {100 * s['padded_patch_fraction']:.1f}% of patches")
            enc = s.get("encoding") or {}
            if enc:
                lines.append(
                    f"  {'':<{width}}  stored as {enc.get('dtype')}"
                    + (f", step {enc['step']:g} {enc.get('units', '')}, largest error "
                       f"{enc['max_abs_error']:.3g} {enc.get('units', '')}" if enc.get("step")
                       else " (exact)"))
            for key, counts in (s.get("window_labels") or {}).items():
                lines.append(f"  {'':<{width}}  label {key}: " + ", ".join(
                    f"{name} {n}" for name, n in counts.items()))
        seen: set[tuple[str, ...]] = set()
        for s in desc["streams"].values():
            key = (s["modality"], *s["channels"])
            if key not in seen:
                seen.add(key)
                lines.append(f"  {s['modality']} channels ({len(s['channels'])}): "
                             f"{_channels(s['channels'])}")
    else:
        lines.append("streams  none")
    if desc.get("labels"):
        lines.append("")
        lines.append("labels")
        for key, info in desc["labels"].items():
            values = info["values"]
            shown = (", ".join(f"{k}: {v}" for k, v in values.items()) if len(values) <= 8
                     else f"{len(values)} distinct values")
            lines.append(f"  {key:<10} {info['count']} ({shown})")
    cfg = desc.get("config") or {}
    if cfg:
        lines.append("")
        lines.append("config")
        lines.append(f"  rates {', '.join(str(x) for x in cfg.get('rates', []))} Hz; window "
                     f"{cfg.get('n_patches')} x {cfg.get('patch_size')} samples, step "
                     f"{cfg.get('window_step') or 'none (no overlap)'}, pad {cfg.get('pad')}")
        tail, enc = cfg.get("tail") or {}, cfg.get("encoding") or {}
        if tail or enc:
            lines.append(f"  tail {tail.get('policy', '?')} (at least "
                         f"{tail.get('min_valid_fraction', '?')} of a window valid); windows "
                         f"stored as {enc.get('dtype', '?')} (ecg step {enc.get('ecg_step')} mV, "
                         f"eeg step {enc.get('eeg_step')} µV)")
        d = cfg.get("dreamer") or {}
        sources = set((desc.get("records") or {}).get("sources") or {})
        if desc.get("labels") and d and sources <= {"dreamer"}:  # what was applied to DREAMER
            lines.append(f"  ecg: {_filter_text(d.get('ecg'))} (dreamer.ecg)")
            lines.append(f"  eeg: {_filter_text(d.get('eeg'))} (dreamer.eeg)")
        else:
            lines.append(f"  ecg: {_filter_text(cfg.get('ecg'))}")
            lines.append(f"  eeg: {_filter_text(cfg.get('eeg'))}")
        if cfg.get("eeg_channels"):
            lines.append(f"  eeg channels: {_channels(cfg['eeg_channels'])} (decided before "
                         "the run; files placed by name)")
        qc = cfg.get("qc") or {}
        if qc:
            lines.append("  qc: " + ", ".join(f"{k} {v}" for k, v in qc.items()))
        d = cfg.get("dreamer") or {}
        if desc.get("labels") and d:
            lines.append(f"  dreamer: {d.get('rate')} Hz, {d.get('window_seconds')} s windows, "
                         f"step {d.get('step_seconds') or 'none'}, baseline "
                         f"{d.get('include_baseline')}")
            scale = d.get("ecg_scale")
            read = desc.get("ecg_units_in") or {}
            lines.append(f"  dreamer ecg: units {d.get('ecg_units', 'counts')}, "
                         + (f"{scale:.5g} mV per count" if isinstance(scale, (int, float))
                            else "scale ?")
                         + ("; records read as " + ", ".join(f"{k} ({v})" for k, v in
                                                            read.items()) if read else ""))
    return "\n".join(lines)


def describe_json(url: str, *, storage_options: dict | None = None) -> str:
    return json.dumps(describe_store(url, storage_options=storage_options), indent=2)
