"""The fourth class of :mod:`adversarial_models`: probe, embed and fusion on bad inputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from adversarial_models import edit, tensors, variant, write


def probe_cases(f: dict[str, Path], work: Path) -> list[tuple[str, str, list[str], str]]:
    import torch

    P = "probe / fusion on bad inputs"
    cc, fe = "criss-cross", "fusion-emotion"
    damaged = work / "damaged.zarr"
    if not damaged.exists():
        shutil.copytree(f["cinc"], damaged)
        shards = sorted((damaged / "ecg@100" / "windows" / "c").iterdir())
        shutil.rmtree(shards[0]) if shards[0].is_dir() else shards[0].unlink()
    big = variant(f["hub"], "probe-big", edit(n_layers=100000))
    nan = variant(f["hub"], "probe-nan", tensors(lambda t: t["encoder.layers.0.linear1.weight"]
                                                 .__setitem__((1, 1), float("nan"))))
    big200 = variant(f["hub200"], "fusion-big", edit(n_layers=100000))
    nan200 = variant(f["hub200"], "fusion-nan", tensors(
        lambda t: t["encoder.layers.0.linear1.weight"].__setitem__((1, 1), float("nan"))))
    junk = variant(f["hub200"], "fusion-junk", write("model.safetensors", os.urandom(3000)))
    bert = variant(f["hub200"], "fusion-bert", write("config.json", json.dumps(
        {"model_type": "bert", "encoder": {}}).encode()))
    garbage_pth = work / "garbage.pth"
    garbage_pth.write_bytes(os.urandom(2000))
    sd = {k: v.clone() for k, v in torch.load(f["pth"], weights_only=True).items()}
    sd["encoder.layers.0.linear2.weight"][0, 0] = float("nan")
    torch.save(sd, work / "nan.pth")
    probe = [cc, "probe", "--store", str(f["cinc"]), "--stream", "ecg@100", "--device", "cpu"]

    def pr(name, *extra, store=None, expect="refuse"):
        argv = list(probe) + ["--out", str(work / "probe" / name.replace(" ", "_"))] + list(extra)
        if store:
            argv[argv.index("--store") + 1] = store
        return (P, f"probe: {name}", argv, expect)

    fusion = [fe, "train", "--store", str(f["dreamer"]), "--no-progress", "--freeze-encoders",
              "--epochs", "1", "--folds", "3", "--modalities", "ecg", "--no-ablations"]

    def fu(name, *extra, expect="refuse"):
        return (P, f"fusion: {name}", fusion + ["--out", str(work / "fusion" / name.replace(
            " ", "_"))] + list(extra), expect)

    emb = [cc, "embed", "--store", str(f["cinc"]), "--stream", "ecg@100", "--no-progress",
           "--device", "cpu", "--overwrite"]
    return [
        pr("Hub folder (control)", "--weights", str(f["hub"]), expect="accept"),
        pr("damaged shard", "--weights", str(f["hub"]), store=str(damaged)),
        pr("missing stream", "--weights", str(f["hub"]), "--stream", "ecg@500"),
        pr("absent labels field", "--weights", str(f["hub"]), "--labels", "nothing"),
        pr("store absent", store=str(work / "absent.zarr")),
        pr("Hub config n_layers 100000", "--weights", str(big)),
        pr("garbage .pth", "--weights", str(garbage_pth)),
        pr("pickle payload .pth", "--weights", str(f["evil"])),
        pr("NaN weights", "--weights", str(nan)),
        pr("patch size differs from the stream", "--weights", str(f["hub200"])),
        pr("--split-by absent field", "--weights", str(f["hub"]), "--split-by", "nothing"),
        (P, "embed: damaged shard", emb + ["--checkpoint", str(f["hub"]), "--out",
                                           str(work / "e1.zarr"), "--store", str(damaged)],
         "refuse"),
        (P, "embed: Hub config n_layers 100000", emb + ["--checkpoint", str(big), "--out",
                                                        str(work / "e2.zarr")], "refuse"),
        (P, "embed: --out is a file", emb + ["--checkpoint", str(f["hub"]), "--out",
                                             str(garbage_pth)], "refuse"),
        fu("Hub folder (control)", "--ecg-weights", str(f["hub200"]), expect="accept"),
        fu("Hub config n_layers 100000", "--ecg-weights", str(big200)),
        fu("pickle payload .pth", "--ecg-weights", str(f["evil"])),
        fu("NaN .pth", "--ecg-weights", str(work / "nan.pth")),
        fu("NaN Hub weights", "--ecg-weights", str(nan200)),
        fu("garbage model.safetensors", "--ecg-weights", str(junk)),
        fu("config.json model_type bert", "--ecg-weights", str(bert)),
        fu("weights absent", "--ecg-weights", str(work / "absent.pth")),
    ]
