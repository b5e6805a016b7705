#!/usr/bin/env bash
# The main job end to end, on data generated here:
#
#   1 biosig-prep synth challenge   a Challenge-2021-style ECG corpus (WFDB .hea + MATLAB v4 .mat,
#                                   7 sources, 257/500/1000 Hz, header quirks, 5 broken files)
#   2 biosig-prep convert/inspect   -> ecg.zarr (ecg@100, ecg@200, ecg@500, ecg@1000)
#   3 criss-cross pretrain --small  dual-masking pretraining mixing the four ECG streams
#   4 biosig-prep synth dreamer     a DREAMER.mat-format file (23 subjects x 18 clips, planted
#                                   effects: valence <- EEG alpha, arousal <- heart rate,
#                                   dominance <- both)
#   5 biosig-prep convert --format dreamer -> dreamer.zarr (eeg@200 + ecg@200 + labels)
#   6 fusion-emotion train          pretrained ECG encoder (step 3) + EEG encoder (no official
#                                   weights here: random init, flagged loudly in the report),
#                                   frozen encoders with cached embeddings, 5 subject folds,
#                                   --fusion all (concat, late, gated, cross-attention, hep) +
#                                   EEG-only + ECG-only + baselines, Holm-corrected statistics,
#                                   window and clip level, calibration, missing-modality AUCs
#   7 the path of report.md
#
# Usage: tools/demo.sh [OUT_DIR]   (default demo-out; `make demo` puts .venv/bin on PATH)
# Re-running is idempotent: a step whose outputs exist and were made with the same settings from
# the same inputs is skipped; a step whose settings or inputs changed is redone from scratch, and
# so are the steps that use its outputs. DEMO_FRESH=1 redoes everything. DEMO_SCALE=tiny shrinks
# every step (a smoke run of about a minute).
# Exit status: 0 when every step succeeded, non-zero at the first failure.
set -euo pipefail

out=${1:-demo-out}
scale=${DEMO_SCALE:-demo}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamps="$out/.stamps"
mkdir -p "$stamps"
if [[ "${DEMO_FRESH:-0}" == 1 ]]; then rm -f "$stamps"/*; fi

for tool in biosig-prep criss-cross fusion-emotion python; do
  if ! command -v "$tool" >/dev/null; then
    echo "demo: '$tool' is not on PATH; run 'make demo' (it creates .venv and puts it on PATH)" >&2
    exit 127
  fi
done

# ---- sizes ------------------------------------------------------------------------------------
case "$scale" in
  demo)
    N_RECORDS=300        # Challenge-style records (mostly 10-60 s; one INCART record)
    BROKEN=5             # unreadable / implausible files among them (skipped with a reason)
    LONG_SECONDS=120     # the INCART record (30 min in the real corpus)
    PRETRAIN_STEPS=200   # --small: 2 layers of CBraMod's width (the loss is flat from ~200 steps) ...
    PRETRAIN_BATCH=32    # ... at the preset's batch 32 (about 1 min on 2 idle cores)
    SUBJECTS=23 CLIPS=18 # DREAMER's shape ...
    CLIP_SECONDS=20      # ... with 20 s clips (65-393 s in the real data): 2 windows of 10 s each
    BASELINE_SECONDS=4
    FOLDS=5 EPOCHS=10    # the paper's 10 epochs; 5 subject folds
    ;;
  tiny)
    N_RECORDS=40 BROKEN=5 LONG_SECONDS=60 PRETRAIN_STEPS=20 PRETRAIN_BATCH=8
    SUBJECTS=10 CLIPS=6 CLIP_SECONDS=10 BASELINE_SECONDS=2
    FOLDS=5 EPOCHS=3
    ;;
  *) echo "demo: DEMO_SCALE must be demo or tiny, got '$scale'" >&2; exit 2 ;;
esac
SEED=0

# ---- helpers ----------------------------------------------------------------------------------
declare -a TIMES=()
t_start=$(date +%s.%N)
n_steps=6

elapsed() { python -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }

if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi

# CPU seconds (user + sys) used so far by the finished child processes of this script, into the
# variable CPU (`times` must run in this shell, not in a $(...) subshell)
cpu_children() {
  times >"$stamps/.times"
  CPU=$(python -c "import re, sys; v = re.findall(r'(\d+)m([\d.]+)s', open(sys.argv[1]).read().splitlines()[-1]); \
print(round(sum(60 * float(m) + float(s) for m, s in v), 1))" "$stamps/.times")
}

banner() {  # banner N TITLE
  step_no=$1; step_title=$2; step_t0=$(date +%s.%N); cpu_children; step_cpu0=$CPU
  printf '\n%s==> [%s/%s] %s%s   (%s)\n' "$BOLD" "$1" "$n_steps" "$2" "$PLAIN" "$(date +%H:%M:%S)"
}

done_step() {
  local dt cpu
  dt=$(elapsed "$step_t0")
  cpu_children
  cpu=$(python -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
    "$step_cpu0" "$CPU")
  TIMES+=("$(printf '%s  %-70s %7s s %7s s' "$step_no" "$step_title" "$dt" "$cpu")")
  printf '%s<== [%s/%s] done in %s s (CPU %s s)%s\n' "$BOLD" "$step_no" "$n_steps" "$dt" "$cpu" "$PLAIN"
}

# fresh NAME KEY OUTPUT...: true when step NAME must run: its stamp is missing, was made with
# another KEY, or an OUTPUT is gone. Then the stamps of NAME and of the steps that use its outputs
# are removed, so those run again as well.
declare -A DOWNSTREAM=(
  [synth_challenge]="convert_ecg pretrain fusion" [convert_ecg]="pretrain fusion"
  [pretrain]="fusion" [synth_dreamer]="convert_dreamer fusion" [convert_dreamer]="fusion"
  [fusion]=""
)
fresh() {
  local name=$1 key=$2 path ok=1 s
  shift 2
  for path in "$@"; do [[ -e "$path" ]] || ok=0; done
  if (( ok )) && [[ -f "$stamps/$name" && "$(cat "$stamps/$name")" == "$key" ]]; then
    echo "    up to date (same settings and inputs as before): skipped; DEMO_FRESH=1 redoes it"
    return 1
  fi
  for s in $name ${DOWNSTREAM[$name]}; do rm -f "$stamps/$s"; done
  return 0
}
stamp() { printf '%s' "$2" >"$stamps/$1"; }
key_of() { { cat "$stamps/$1" 2>/dev/null || true; } | sha1sum | cut -c1-12; }  # an upstream step's identity

fail() { echo "demo: FAILED at step $step_no ($step_title): $*" >&2; exit 1; }

corpus="$out/challenge"
ecg_store="$out/ecg.zarr"
pretrain_dir="$out/pretrain"
dreamer_mat="$out/DREAMER.mat"
dreamer_store="$out/dreamer.zarr"
fusion_dir="$out/fusion"

# ---- 1. Challenge-style ECG corpus ------------------------------------------------------------
banner 1 "biosig-prep synth challenge: $N_RECORDS records, $BROKEN broken"
key="challenge n=$N_RECORDS broken=$BROKEN long=$LONG_SECONDS seed=$SEED"
if fresh synth_challenge "$key" "$corpus/manifest.json"; then
  rm -rf "$corpus"
  biosig-prep synth challenge "$corpus" --n-records "$N_RECORDS" --broken "$BROKEN" \
    --long-seconds "$LONG_SECONDS" --seed "$SEED"
  stamp synth_challenge "$key"
fi
python - "$corpus/manifest.json" <<'EOF'
import collections, json, sys
m = json.load(open(sys.argv[1]))
recs = m["records"]
src = collections.Counter(r["source"] for r in recs)
st = collections.Counter(r["expected_status"] for r in recs)
print(f"    manifest: {len(recs)} records, sources {dict(sorted(src.items()))}, "
      f"{sum(r['duration_s'] for r in recs) / 3600:.2f} h of signal")
print(f"    planted: {sum(1 for r in recs if r['quirks'])} quirky records, expected status {dict(st)}")
EOF
done_step

# ---- 2. convert + inspect ---------------------------------------------------------------------
banner 2 "biosig-prep convert (4 rates) + inspect -> ecg.zarr"
key="convert $(key_of synth_challenge)"
if fresh convert_ecg "$key" "$ecg_store"; then
  rm -rf "$ecg_store"
  set +e
  biosig-prep convert "$corpus" "$ecg_store" --rates 100,200,500,1000
  rc=$?
  set -e
  # exit 3 = the store is complete but some records were skipped (listed above with the reason).
  # This corpus has broken files on purpose, so 3 is expected here (and checked against the
  # manifest below); 1 (error, or nothing converted) or 2 (usage error) fail the demo.
  case $rc in
    0) echo "    convert: exit 0 (no record skipped)" ;;
    3) echo "    convert: exit 3 = some records skipped, as planted (checked against the manifest)" ;;
    *) fail "biosig-prep convert exited with $rc" ;;
  esac
  stamp convert_ecg "$key"
fi
python - "$ecg_store" "$corpus/manifest.json" <<'EOF' || fail "store does not match the manifest"
import json, sys
from biosig_prep import open_store
store = open_store(sys.argv[1])
recs = json.load(open(sys.argv[2]))["records"]
s = store.summary
bad = sum(r["expected_status"] in ("read_error", "qc_error") for r in recs)
maybe = sum(r["expected_status"] == "qc_flat_lead" for r in recs)
print(f"    store: {s['records_ok']} ok / {s['records_skipped']} skipped of {s['records_in']}; "
      f"windows {s['windows']}")
assert s["records_in"] == len(recs), (s["records_in"], len(recs))
assert bad <= s["records_skipped"] <= bad + maybe, (s["records_skipped"], bad, maybe)
for name in store.stream_names:
    assert len(store.stream(name)) == s["windows"][name], name
EOF
biosig-prep inspect "$ecg_store"
done_step

# ---- 3. pretraining ---------------------------------------------------------------------------
banner 3 "criss-cross pretrain --small: $PRETRAIN_STEPS steps x $PRETRAIN_BATCH on ecg@100/200/500/1000"
key="pretrain steps=$PRETRAIN_STEPS batch=$PRETRAIN_BATCH seed=$SEED $(key_of convert_ecg)"
if fresh pretrain "$key" "$pretrain_dir/checkpoints"; then
  rm -rf "$pretrain_dir"
  criss-cross pretrain --small --store "$ecg_store" \
    --stream ecg@100 --stream ecg@200 --stream ecg@500 --stream ecg@1000 \
    --steps "$PRETRAIN_STEPS" --batch-size "$PRETRAIN_BATCH" --checkpoint-every "$PRETRAIN_STEPS" --log-every 10 \
    --seed "$SEED" --out "$pretrain_dir"
  stamp pretrain "$key"
fi
# the newest checkpoint of the run (checkpoints/latest points at it)
ecg_weights=$(python -c "import sys; from criss_cross.embed import resolve_checkpoint; \
print(resolve_checkpoint(sys.argv[1]).with_suffix('.safetensors'))" "$pretrain_dir") \
  || fail "no checkpoint in $pretrain_dir"
[[ -f "$ecg_weights" ]] || fail "checkpoint $ecg_weights is missing"
python - "$pretrain_dir/metrics.jsonl" <<'EOF' || fail "pretraining did not beat predicting zeros"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
k = max(1, len(rows) // 5)
loss = sum(r["loss"] for r in rows[-k:]) / k
zeros = sum(r["zero_mse"] for r in rows[-k:]) / k  # predicting zeros on the same masked positions
print(f"    masked loss, last fifth of the run: {loss:.4f} mV^2 against {zeros:.4f} for predicting "
      f"zeros ({loss / zeros:.2f}x)")
assert loss < zeros, "the model does no better than predicting zeros"
EOF
echo "    ECG encoder checkpoint: $ecg_weights"
echo "    loss curve: $pretrain_dir/loss_curve.png"
done_step

# ---- 4. DREAMER-format file -------------------------------------------------------------------
banner 4 "biosig-prep synth dreamer: $SUBJECTS subjects x $CLIPS clips of $CLIP_SECONDS s"
key="dreamer s=$SUBJECTS c=$CLIPS secs=$CLIP_SECONDS base=$BASELINE_SECONDS seed=$SEED"
if fresh synth_dreamer "$key" "$dreamer_mat"; then
  rm -f "$dreamer_mat" "$out/dreamer_truth.json"
  biosig-prep synth dreamer "$dreamer_mat" --subjects "$SUBJECTS" --clips "$CLIPS" \
    --clip-seconds "$CLIP_SECONDS" --baseline-seconds "$BASELINE_SECONDS" --seed "$SEED" \
    --effects planted --truth "$out/dreamer_truth.json"
  stamp synth_dreamer "$key"
fi
done_step

# ---- 5. convert DREAMER -----------------------------------------------------------------------
banner 5 "biosig-prep convert --format dreamer -> dreamer.zarr"
key="convert-dreamer $(key_of synth_dreamer)"
if fresh convert_dreamer "$key" "$dreamer_store"; then
  rm -rf "$dreamer_store"
  biosig-prep convert "$dreamer_mat" "$dreamer_store" --format dreamer \
    || fail "biosig-prep convert --format dreamer exited with $? (no record may be skipped here)"
  stamp convert_dreamer "$key"
fi
python - "$dreamer_store" "$SUBJECTS" "$CLIPS" "$CLIP_SECONDS" <<'EOF' || fail "dreamer store is not as expected"
import sys
import numpy as np
from biosig_prep import open_store
store = open_store(sys.argv[1])
n_sub, n_clip, secs = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
win_s = store.config["dreamer"]["window_seconds"]
expect = n_sub * n_clip * int(secs // win_s)
labels = store.labels()
n = {name: len(store.stream(name)) for name in store.stream_names}
print(f"    streams {n}; {len(np.unique(labels['subject']))} subjects, "
      f"{len(np.unique(labels['clip']))} clips, {expect} windows expected")
assert all(v == expect for v in n.values()), (n, expect)
assert all(len(v) == expect for v in labels.values())
EOF
done_step

# ---- 6. fusion --------------------------------------------------------------------------------
banner 6 "fusion-emotion train --fusion all: frozen encoders, $FOLDS folds x $EPOCHS epochs"
key="fusion folds=$FOLDS epochs=$EPOCHS pool=mean fusion=all $(key_of convert_dreamer) $(key_of pretrain)"
if fresh fusion "$key" "$fusion_dir/report.md"; then
  rm -rf "$fusion_dir"
  echo "    (no official CBraMod weights in the demo: the EEG encoder is randomly initialised, and"
  echo "     the report says so; pass --eeg-weights pretrained_weights.pth on real data)"
  # --pool mean: with ~800 windows the paper's flattened (10 x 200 per modality) features overfit
  # (fusion fell below EEG-only here); on a full-size DREAMER store flatten is the default
  fusion-emotion train --store "$dreamer_store" --ecg-weights "$ecg_weights" \
    --freeze-encoders --pool mean --fusion all --folds "$FOLDS" --epochs "$EPOCHS" --out "$fusion_dir"
  stamp fusion "$key"
fi
[[ -f "$fusion_dir/report.md" && -f "$fusion_dir/metrics.json" ]] \
  || fail "fusion-emotion train wrote no report.md / metrics.json in $fusion_dir"
echo "    Table 1 of the report (percent; per-subject means, mean ± std over folds):"
sed -n '/^## Table 1/,/^## /p' "$fusion_dir/report.md" | grep '^|' | sed 's/^/    /'
echo "    Which differences are more than noise (paired over subjects; the report has the table):"
sed -n '/^In words/,/^The per-subject/p' "$fusion_dir/report.md" | grep '^- ' | sed 's/^/    /'
echo "    per-subject AUC plot: $fusion_dir/subject_auc.png"
done_step

# ---- 7. summary --------------------------------------------------------------------------------
total=$(elapsed "$t_start")
echo
echo "step timings (wall clock; CPU = user + sys seconds of the step's processes):"
printf '  %-73s %9s %9s\n' "" "wall" "CPU"
printf '  %s\n' "${TIMES[@]}"
cpu_children
printf '  %-73s %7s s %7s s\n' "total" "$total" "$CPU"
echo
echo "outputs in $out:"
echo "  ECG corpus       $corpus  (manifest.json lists every record, quirk and broken file)"
echo "  ECG store        $ecg_store"
echo "  pretraining run  $pretrain_dir  (metrics.jsonl, loss_curve.png, checkpoints/)"
echo "  DREAMER file     $dreamer_mat  (+ dreamer_truth.json: the planted states)"
echo "  DREAMER store    $dreamer_store"
echo "  fusion run       $fusion_dir  (metrics.json, plots, config)"
echo
echo "report: $fusion_dir/report.md"
