"""`eenet predict` and `eenet export` on the tiny run: the runtime on image files decides as the cached evaluation,
the exported program (loaded without eenet) as the runtime; wrong paths and foreign policies are one line."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, clone_run, documented, edit_config, snakemake, tiny_test_images

from eenet.cli import main
from eenet.data import DatasetSpec
from eenet.io import load_tensors, read_json, write_json
from eenet.schedulers import exit_predictions, fit_policy, make_scheduler, scheduler_from_json

N = 60  # test samples written as image files


def policies(res: Path) -> list[tuple[str, str]]:
    """(method, budget) of every fitted policy of a run that can predict (not the oracle, not an infeasible fit)."""
    out = []
    for f in sorted(res.glob("schedulers/*/*.json")):
        fitted = read_json(f)
        if not fitted.get("infeasible") and fitted["method"] != "oracle":
            out.append((f.parent.name, f.stem))
    return out


@pytest.fixture(scope="module")
def run(tiny_run) -> dict:
    """The tiny run's results, its test split (the first N samples written as PNG files) and cached test logits."""
    return tiny_test_images(tiny_run, N, "images")


def predict_csv(args: list[str], out: Path) -> list[dict[str, str]]:
    assert main(["predict", *args, "-o", str(out)]) == 0
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("batch_size", ["1", "16"])
def test_predict_on_image_files_gives_the_cached_evaluation(run, batch_size, tmp_path):
    found = policies(run["res"])
    assert {m for m, _ in found} == {"eenet", "maxpred", "entropy"} and len(found) == 6
    classes = run["spec"].classes
    for method, budget in found:
        rows = predict_csv([str(run["res"]), "--method", method, "--budget", budget, "--batch-size", batch_size, str(run["images"])],
                           tmp_path / f"{method}-{budget}.csv")  # fmt: skip
        assert [Path(r["input"]).name for r in rows] == [f"sample{i:03d}.png" for i in range(N)]
        sched = scheduler_from_json(read_json(run["res"] / "schedulers" / method / f"{budget}.json"))
        exits = sched.assign(run["probs"])
        preds = exit_predictions(run["probs"], exits)
        assert [int(r["exit"]) for r in rows] == exits.tolist(), (method, budget)
        assert [r["prediction"] for r in rows] == [classes[i] for i in preds.tolist()], (method, budget)
        conf = run["probs"].max(dim=2).values.gather(0, exits.view(1, -1))[0]
        assert torch.allclose(torch.tensor([float(r["confidence"]) for r in rows]), conf, atol=1e-6)
        assert all(float(r["ms"]) > 0 for r in rows)
        assert len(set(exits.tolist())) > 1  # the policy sends samples to different exits: the check means something


def test_predictor_api_on_a_batch_of_model_inputs(run):
    from eenet.predict import Predictor

    pred = Predictor.from_results(run["res"], "maxpred", 0.9, batch_size=8)
    out = pred(run["test"].inputs(torch.arange(N), torch.device("cpu")))
    sched = pred.sched
    assert out.exits.tolist() == sched.assign(run["probs"]).tolist()
    assert out.labels.tolist() == exit_predictions(run["probs"], out.exits).tolist()
    assert out.names == [run["spec"].classes[i] for i in out.labels.tolist()]


def write_policy(src: Path, dest: Path, change) -> Path:
    """A copy of a results directory's model and one policy file, the policy's JSON changed by ``change``."""
    dest.mkdir(parents=True)
    shutil.copy2(src / "model.pt", dest / "model.pt")
    fitted = read_json(src / "schedulers" / "maxpred" / "0.9.json")
    change(fitted)
    write_json(dest / "schedulers" / "maxpred" / "0.9.json", fitted)
    return dest


def test_refusals_are_one_line(run, tmp_path, capsys):
    args = ["--method", "maxpred", "--budget", "0.9", str(run["images"])]
    other = write_policy(run["res"], tmp_path / "other", lambda f: f.update(logits_model_sha256="0" * 64))
    cases = [
        ([str(other), *args], "was fitted for another model"),
        ([str(tmp_path / "nowhere"), *args], "no model.pt here"),
        ([str(run["res"]), "--method", "maxpred", "--budget", "0.5", str(run["images"])], "fitted budgets: 0.75, 0.9"),
        ([str(run["res"]), "--method", "oracle", "--budget", "0.9", str(run["images"])], "looks at the labels"),
        ([str(run["res"]), "--method", "patience", "--budget", "0.9", str(run["images"])], "fitted: eenet, entropy, maxpred, oracle"),
        ([str(run["res"]), *args[:4], str(REPO / "README.md")], "not an image file"),
        ([str(run["res"]), *args[:4], str(tmp_path / "missing.png")], "no such file or folder"),
    ]
    for argv, message in cases:
        assert main(["predict", *argv]) == 2, message
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith("eenet predict: ")
    assert main(["export", str(other), *args[:4], "-o", str(tmp_path / "x.pt2")]) == 2
    assert "was fitted for another model" in capsys.readouterr().err and not (tmp_path / "x.pt2").exists()
    # a policy file from before the checksum was recorded: used, with a warning
    old = write_policy(run["res"], tmp_path / "old", lambda f: f.pop("logits_model_sha256"))
    rows = predict_csv([str(old), *args], tmp_path / "old.csv")
    assert len(rows) == N and "records no model checksum" in capsys.readouterr().err


def test_examples_are_the_first_test_images(run):
    from PIL import Image

    files = sorted((REPO / "examples" / "fashion_mnist").glob("*.png"))
    assert len(files) == 6
    for i, f in enumerate(files):
        label = run["spec"].classes[int(run["test"].labels[i])].lower().replace("/", "_").replace(" ", "_").replace("-", "_")
        assert f.name == f"test{i}_{label}.png"
        with Image.open(f) as im:
            assert torch.equal(torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(28, 28), run["test"].images[i, 0])


def console_script() -> Path:
    """The installed `eenet` command beside this Python (``make test`` installs it with the package)."""
    script = Path(sys.executable).parent / "eenet"
    if not script.exists():
        if Path(sys.executable).parent == REPO / ".venv" / "bin":
            pytest.fail(f"{script} is missing: the package is installed without its console script (re-run `make test`)")
        pytest.skip(f"no eenet console script beside {sys.executable} (this Python has not installed the package)")
    return script


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), re.S)


def test_readme_and_docs_commands_as_written(tiny_run, tmp_path):
    """The README's quick start ends with `eenet predict` on the demo images; docs/use.md adds `eenet export` and two
    Python examples. All run as written in a copy of the tiny run whose results stand in for the demo's (a budget
    0.5, fitted by the workflow), with the installed console script as `.venv/bin/eenet`."""
    command = documented(".venv/bin/eenet predict results/fashion_mnist --method maxpred --budget 0.5 examples/fashion_mnist")
    export = documented(".venv/bin/eenet export results/fashion_mnist --method maxpred --budget 0.5 -o maxpred.pt2")
    docs = REPO / "docs" / "use.md"
    script = console_script()
    wd = clone_run(tiny_run, tmp_path / "run")
    # the demo's budget 0.5, here in ms: as a fraction it sits at the tiny network's first exit (0.47-0.51 of the
    # whole, by machine), and 0.5 ms is above the whole tiny network (0.2 ms here) on any machine that runs the tests
    edit_config(wd, lambda bench: bench.update(budgets={"unit": "ms", "values": [0.5, 0.75, 0.9]}))
    snakemake(wd, "results/tiny/schedulers/maxpred/0.5.json")
    (wd / "results" / "fashion_mnist").symlink_to("tiny")
    shutil.copytree(REPO / "examples", wd / "examples")
    (wd / ".venv" / "bin").mkdir(parents=True)
    (wd / ".venv" / "bin" / "eenet").symlink_to(script)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(shlex.split(command), cwd=wd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(proc.stdout.splitlines()))
    demo = sorted((REPO / "examples" / "fashion_mnist").glob("*"))
    assert [r["input"] for r in rows] == [f"examples/fashion_mnist/{f.name}" for f in demo]
    probs, _ = load_tensors(wd / "results" / "tiny" / "logits" / "test.safetensors")
    sched = scheduler_from_json(read_json(wd / "results" / "tiny" / "schedulers" / "maxpred" / "0.5.json"))
    exits = sched.assign(probs["probs"])[:6]  # the demo images are the first test images
    assert [int(r["exit"]) for r in rows] == exits.tolist()
    classes = DatasetSpec.from_manifest(wd / "data" / "fashion_mnist" / "manifest.json").classes
    assert [r["prediction"] for r in rows] == [classes[i] for i in exit_predictions(probs["probs"][:, :6], exits).tolist()]
    # docs/use.md: the export command, then its Python examples (the API; loading the exported file without eenet)
    proc = subprocess.run(shlex.split(export), cwd=wd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and (wd / "maxpred.pt2").is_file(), proc.stderr
    api, loading = blocks(docs, "python")
    out = subprocess.run([sys.executable, "-c", api], cwd=wd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"[{rows[0]['prediction']!r}] [{rows[0]['exit']}]"), out.stdout
    plain = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", loading + "\nimport sys\nassert 'eenet' not in sys.modules"], cwd=wd,
                         capture_output=True, text=True, env=plain, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{rows[0]['prediction']} at exit {rows[0]['exit']} confidence "), out.stdout
    help_text = subprocess.run([str(script), "--help"], capture_output=True, text=True).stdout
    assert all(sub in help_text for sub in ("predict", "export", "stats", "lineage"))
    for sub in ("predict", "export", "stats", "lineage"):
        proc = subprocess.run([str(script), sub, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage: eenet " + sub in proc.stdout, proc.stdout + proc.stderr


LOADER = """
import json, sys, torch
programs, images = sys.argv[1:-1], torch.load(sys.argv[-1], weights_only=True)
out = {}
with torch.inference_mode():
    for path in programs:
        extra = {"eenet.json": ""}
        program = torch.export.load(path, extra_files=extra).module()
        info = json.loads(extra["eenet.json"])
        assert list(images.shape[1:]) == info["input"]["shape"][1:], info
        res = [program(images[i : i + 1]) for i in range(images.shape[0])]
        out[path] = torch.stack([torch.cat([r[0] for r in res]), torch.cat([r[1] for r in res])])
        out[path + ":confidence"] = torch.cat([r[2] for r in res])
assert not any(m == "eenet" or m.startswith("eenet.") for m in sys.modules), "eenet was imported"
torch.save(out, sys.argv[-1] + ".out")
"""


def test_exported_program_decides_as_the_runtime_without_eenet(run, tmp_path):
    from eenet.export import export_policy, export_results
    from eenet.models import load_model
    from eenet.predict import Predictor

    model, meta = load_model(str(run["res"] / "model.pt"))
    test, probs = run["test"], run["probs"]
    programs: dict[str, Path] = {}
    scheds = {}
    for method, budget in policies(run["res"]):
        programs[f"{method}/{budget}"] = export_results(run["res"], method, budget, tmp_path / f"{method}_{budget}.pt2")
        scheds[f"{method}/{budget}"] = scheduler_from_json(read_json(run["res"] / "schedulers" / method / f"{budget}.json"))
    # the other exportable kinds, fitted on the run's validation logits
    val, _ = load_tensors(run["res"] / "logits" / "val.safetensors")
    costs = read_json(run["res"] / "schedulers" / "maxpred" / "0.75.json")["costs"]
    for method, params in (("patience", {}), ("maxpred_ts", {}), ("entropy_opt", {}), ("static", {"exit_index": 1})):
        budget = costs[1] if method != "patience" else 0.5 * (costs[0] + costs[2])
        sched = make_scheduler(method, **params).fit(val["probs"], val["labels"], costs, budget)
        scheds[method] = sched
        programs[method] = export_policy(model, sched, run["spec"], meta, tmp_path / f"{method}.pt2", {"method": method})
    # combined policies (a combiner, then a policy: one CombinedPolicy), as the workflow fits them
    for method in ("ztw_ens+maxpred", "mie+entropy", "pa+patience", "ztw_ens+eenet"):
        params = {"epochs": 5, "restarts": 1, "patience": 3, "lr": 0.01} if "eenet" in method else {}
        budget = 0.5 * (costs[0] + costs[2])
        scheds[method] = fit_policy(method, params, val["probs"], val["logits"], val["labels"], costs, budget)
        programs[method] = export_results_of(model, scheds[method], run, meta, tmp_path / f"{method}.pt2")
    images = test.images[:N].clone()
    torch.save(images, tmp_path / "images.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", LOADER, *map(str, programs.values()), str(tmp_path / "images.pt")],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = torch.load(tmp_path / "images.pt.out", weights_only=True)
    for name, path in programs.items():
        runtime = Predictor(model, scheds[name], run["spec"], meta, batch_size=1)(test.subset(torch.arange(N)))
        labels, exits = out[str(path)]
        assert exits.tolist() == runtime.exits.tolist(), name
        assert labels.tolist() == runtime.labels.tolist(), name
        assert torch.allclose(out[f"{path}:confidence"], runtime.confidence, atol=1e-5), name
        cached = scheds[name].outputs({"probs": probs, "logits": run["logits"]})  # what the policy reads: softmax or combined
        assert exits.tolist() == scheds[name].assign(cached).tolist(), name  # and as the cached evaluation
        if name != "static":
            assert len(set(exits.tolist())) > 1, name
    info = json.loads(subprocess.run([sys.executable, "-c", "import torch, sys; e={'eenet.json': ''}; "
                                      "torch.export.load(sys.argv[1], extra_files=e); print(e['eenet.json'])", str(programs["eenet/0.9"])],
                                     capture_output=True, text=True, env=env, cwd=tmp_path).stdout)  # fmt: skip
    assert info["classes"] == list(run["spec"].classes) and info["method"] == "eenet" and info["input"]["shape"] == [1, 1, 28, 28]
    assert info["input"]["pil_mode"] == "L" and ".convert('L')" in info["input"]["convert"]  # what the reader does to a file
    combined = subprocess.run([sys.executable, "-c", "import torch, sys; e={'eenet.json': ''}; "
                               "torch.export.load(sys.argv[1], extra_files=e); print(e['eenet.json'])", str(programs["ztw_ens+maxpred"])],
                              capture_output=True, text=True, env=env, cwd=tmp_path).stdout  # fmt: skip
    assert json.loads(combined)["method"] == "ztw_ens+maxpred"


def export_results_of(model, sched, run, meta, out):
    """Export as `eenet export` does (the description names the policy by sched.method: a combined one by both steps)."""
    from eenet.export import export_policy

    return export_policy(model, sched, run["spec"], meta, out, {"method": sched.method})


def test_export_refuses_what_it_cannot_express(run, tmp_path, capsys):
    out = tmp_path / "oracle.pt2"
    assert main(["export", str(run["res"]), "--method", "oracle", "--budget", "0.9", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eenet export: ") and "looks at the labels" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_stats_subcommand_prints_the_markdown_table(run, capsys):
    from eenet.analysis.stats import markdown_table
    from eenet.io import read_csv

    assert main(["stats", str(run["res"] / "stats.csv")]) == 0
    assert capsys.readouterr().out == markdown_table(read_csv(run["res"] / "stats.csv")) + "\n"
    assert main(["stats", str(run["res"] / "nothing.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eenet stats: ") and "no such file" in err and len(err.splitlines()) == 1


def test_predict_on_texts_gives_the_cached_evaluation(tmp_path, capsys):
    """A text benchmark's run, made here at small scale: MiniLM cut to 3 layers with 3 exits, MaxPred fitted on the
    validation logits of 64 Rotten Tomatoes snippets; `eenet predict` on a JSON-lines file of 16 others decides as
    the evaluation of their cached logits (cache_logits' predict_probs, batch 16)."""
    from eenet.catalog import local_path
    from eenet.data import ROTTEN_TOMATOES
    from eenet.data.text import TextSplit
    from eenet.datafiles import read_table
    from eenet.io import file_sha256
    from eenet.models import build_model, save_model, text_tokenizer
    from eenet.training.inference import predict_probs

    table = read_table(local_path(ROTTEN_TOMATOES.train))
    table = table[table["category"].isin(["rotten", "fresh"])].drop_duplicates("text").iloc[:80]
    texts, labels = table["text"].tolist(), torch.tensor([["rotten", "fresh"].index(c) for c in table["category"]])
    kwargs = {"num_hidden_layers": 3, "exit_layers": [1, 2, 3]}
    torch.manual_seed(0)
    model = build_model("minilm_3", 2, None, **kwargs).eval()
    res = tmp_path / "results" / "reviews"
    save_model(str(res / "model.pt"), model, {"arch": "minilm_3", "arch_kwargs": kwargs, "num_classes": 2, "in_channels": 3,
                                               "dataset": "rotten_tomatoes", "max_length": 32})  # fmt: skip
    enc = text_tokenizer(kwargs, "minilm_3")(texts, padding="max_length", truncation=True, max_length=32, return_tensors="pt")
    split = TextSplit(enc["input_ids"].long(), enc["attention_mask"].long(), labels)
    probs = predict_probs(model, split, 16)
    costs = [1.0, 2.0, 3.0]
    sched = make_scheduler("maxpred").fit(probs[:, :64], labels[:64], costs, 2.0)
    write_json(res / "schedulers" / "maxpred" / "2.0.json", {"logits_model_sha256": file_sha256(res / "model.pt"), **sched.to_json()})
    inputs = tmp_path / "reviews.jsonl"
    inputs.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[64:]))
    exits = sched.assign(probs[:, 64:])
    assert len(set(exits.tolist())) > 1
    for batch in ("1", "16"):
        rows = predict_csv([str(res), "--method", "maxpred", "--budget", "2", "--batch-size", batch, str(inputs)], tmp_path / "out.csv")
        assert [r["input"] for r in rows] == [f"{inputs}:{i}" for i in range(16)]
        assert [int(r["exit"]) for r in rows] == exits.tolist(), batch
        assert [r["prediction"] for r in rows] == [["rotten", "fresh"][i] for i in exit_predictions(probs[:, 64:], exits).tolist()]
    assert main(["export", str(res), "--method", "maxpred", "--budget", "2", "-o", str(tmp_path / "text.pt2")]) == 2
    assert not (tmp_path / "text.pt2").exists() and "is a text model" in capsys.readouterr().err
