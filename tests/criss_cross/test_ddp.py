"""DDP: two CPU processes under torchrun (gloo) end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from criss_cross.pretrain import latest_checkpoint, parameter_digest

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from criss_cross.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig.from_file(sys.argv[1])
    out = sys.argv[2]
    summary = pretrain(cfg, out, progress=False)
    rank = int(os.environ["RANK"])
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"digest": summary.param_digest, "losses": summary.losses,
                   "world_size": summary.world_size}, f)
    """
)


def test_two_ranks_hold_identical_weights(tiny_config, tmp_path):
    cfg = tiny_config(steps=6, batch_size=16, checkpoint_every=3, log_every=3, num_workers=1)
    cfile = tmp_path / "cfg.json"
    cfile.write_text(json.dumps(cfg.model_dump(mode="json")))
    script = tmp_path / "run_ddp.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script), str(cfile), str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    # the first traceback says why (torchrun's own summary follows it)
    assert res.returncode == 0, res.stderr[res.stderr.find("Traceback"):][:4000]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # all-reduced: the mean over both ranks
    assert len(ranks[0]["losses"]) == 6
    # rank 0 alone wrote the checkpoint, and it holds those weights
    from criss_cross.checkpoint import load_checkpoint

    ck = latest_checkpoint(out)
    assert ck.name == "step_00000006"
    assert parameter_digest(load_checkpoint(ck / "model")) == ranks[0]["digest"]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [3, 6]
