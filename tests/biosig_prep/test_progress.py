"""The shared progress bar of the command lines."""

from __future__ import annotations

from rich.console import Console

from biosig_prep.progress import progress_bar


def test_disabled_is_none():
    assert progress_bar(False, "x") is None


def test_columns_show_description_count_and_fields():
    bar = progress_bar(True, "loss {task.fields[loss]:.2f}", "files")
    assert bar is not None and bar.console.stderr
    task = bar.add_task("pretrain", total=10, loss=0.5)
    bar.update(task, advance=3)
    out = Console(record=True, width=160)
    out.print(bar.make_tasks_table(bar.tasks))
    text = out.export_text()
    assert "pretrain" in text and "3/10" in text and "loss 0.50" in text and "files" in text
