"""The compiled package (`eenet export --compiled`, `eenet predict --compiled`, eenet.compiled) decides and predicts as
the runtime and as the cached evaluation: a threshold policy of the tiny run through the command line (and docs/use.md's
PyTorch-alone loop on it, without eenet), then, on a 6-exit resnet_6, which the nested-``torch.cond`` export cannot
take, a combined policy compiled and patience through the same segments uncompiled. Each compile is ~10-30 s per exit
(a C++ compiler): two compiles, 9 segments, in this file."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import REPO, tiny_test_images

from eenet.cli import main
from eenet.data import DatasetSpec, normalize
from eenet.io import read_json
from eenet.schedulers import exit_predictions, fit_policy, scheduler_from_json

N = 60  # test samples
needs_compiler = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="AOTInductor needs a C++ compiler")


@pytest.fixture(scope="module")
def run(tiny_run) -> dict:
    """The tiny run's results, its first N test images (also as PNG files) and their cached logits."""
    return tiny_test_images(tiny_run, N, "compiled-images")


def runtime_of(model, sched, run) -> tuple[list[int], list[int], torch.Tensor]:
    """(labels, exits, confidence) of the Python runtime at batch 1 on the first N test images."""
    from eenet.predict import Predictor

    out = Predictor(model, sched, run["spec"], {"arch": "small_cnn_3"}, batch_size=1)(run["test"].subset(torch.arange(N)))
    return out.labels.tolist(), out.exits.tolist(), out.confidence


@needs_compiler
def test_threshold_policy_compiled_by_the_command_line_predicts_as_the_cache(run, tmp_path, capsys):
    from eenet.models import load_model

    res, package = run["res"], tmp_path / "maxpred_compiled.pt2"
    args = [str(res), "--method", "maxpred", "--budget", "0.75"]
    assert main(["export", *args, "--compiled", "-o", str(package)]) == 0 and package.is_file()
    out = tmp_path / "pred.csv"
    assert main(["predict", *args, "--compiled", str(package), str(run["images"]), "-o", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    sched = scheduler_from_json(read_json(res / "schedulers" / "maxpred" / "0.75.json"))
    exits = sched.assign(run["probs"])
    assert [int(r["exit"]) for r in rows] == exits.tolist() and len(set(exits.tolist())) > 1
    classes = run["spec"].classes
    assert [r["prediction"] for r in rows] == [classes[i] for i in exit_predictions(run["probs"], exits).tolist()]
    conf = run["probs"].max(dim=2).values.gather(0, exits.view(1, -1))[0]
    assert torch.allclose(torch.tensor([float(r["confidence"]) for r in rows]), conf, atol=1e-5)
    model, _ = load_model(str(res / "model.pt"))
    labels, rt_exits, _ = runtime_of(model, sched, run)
    assert rt_exits == exits.tolist() and [classes[i] for i in labels] == [r["prediction"] for r in rows]
    # every test image, against the workflow's evaluation record (its exit histogram and accuracy)
    from eenet.compiled import CompiledPolicy

    policy, test = CompiledPolicy.load(package), run["test"]
    record = read_json(res / "eval" / "maxpred" / "0.75.json")
    n = sum(record["exit_histogram"])  # the first n test images are the run's test set
    answers = [policy(test.images[i : i + 1]) for i in range(n)]
    assert torch.bincount(torch.tensor([a[1] for a in answers]), minlength=3).tolist() == record["exit_histogram"]
    assert sum(a[0] == int(y) for a, y in zip(answers, test.labels[:n], strict=True)) / n == pytest.approx(record["test_accuracy"])
    capsys.readouterr()
    # the package is checked against the policy asked for; what cannot be compiled is refused before compiling
    assert main(["predict", str(res), "--method", "maxpred", "--budget", "0.9", "--compiled", str(package), str(run["images"])]) == 2
    assert main(["export", str(res), "--method", "oracle", "--budget", "0.9", "--compiled", "-o", str(tmp_path / "o.pt2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "budget_value" in err[0] and "looks at the labels" in err[1], err
    # docs/use.md's loop, as written, in a Python that never imports eenet
    (loop,) = re.findall(r"```py\n(.*?)```", (REPO / "docs" / "use.md").read_text(), re.S)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", loop + "\nimport sys\nassert 'eenet' not in sys.modules"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    from eenet.predict import _decode

    image = _decode(REPO / "examples" / "fashion_mnist" / "test0_ankle_boot.png", run["spec"]).unsqueeze(0)
    label, k, c = CompiledPolicy.load(package)(image)
    assert proc.stdout.startswith(f"{classes[label]} at exit {k} confidence {round(c, 4)}"), proc.stdout


def chain(segments, image: torch.Tensor) -> tuple[int, int]:
    """(label, exit) of one image through segments called in turn, as CompiledPolicy and docs/use.md's loop do."""
    out, k = segments[0](image), 0
    while not out[3].item():
        k += 1
        out = segments[k](*out[:3])
    return int(out[4]), k


@needs_compiler
@pytest.mark.workflow  # not the workflow, but as slow as the tests that run it: six segments to compile
def test_six_exits_policies_reading_earlier_exits_decide_as_the_runtime_and_the_cache(tmp_path):
    """On a 6-exit resnet_6 (random weights; labels: its last exit's answers), a combined policy compiled, and patience
    through the segments uncompiled (the same code): the nested-torch.cond export takes neither."""
    from eenet.compiled import CompiledPolicy, ExitSegment, compile_policy
    from eenet.export import ExitProgram
    from eenet.measure.runtime import adaptive_forward
    from eenet.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet_6", 10, 1, width=4).eval()
    with torch.no_grad():  # heads less unsure than at initialisation: the exits' scores spread apart
        for head in model.heads:
            head.fc.weight.mul_(20.0)
    spec = DatasetSpec("rand", kind="idx", torchvision_class="FashionMNIST", raw_subdir="x", files={}, num_classes=10, in_channels=1,
                       image_size=28, mean=(0.5,), std=(0.5,))  # fmt: skip
    images = torch.randint(0, 256, (360, 1, 28, 28), dtype=torch.uint8)
    with torch.inference_mode():
        logits = torch.stack(model(normalize(images, spec.mean, spec.std))).float()
    probs, labels, costs = logits.softmax(dim=2), logits[-1].argmax(dim=1), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    val, test = slice(0, 300), range(300, 360)
    for method in ("ztw_ens+maxpred", "patience"):  # ZTW's ensemble: fitted biases, buffers of the program
        sched = fit_policy(method, {}, probs[:, val], logits[:, val], labels[val], costs, 3.5)
        if method == "patience":
            program = ExitProgram(model, sched, spec.mean, spec.std).eval()
            segments = [ExitSegment(program, k) for k in range(6)]
            with torch.inference_mode():
                answers = [chain(segments, images[i : i + 1]) for i in test]
        else:
            package = compile_policy(model, sched, spec, {"arch": "resnet_6"}, tmp_path / "p.pt2", {"method": method})
            policy = CompiledPolicy.load(package)
            assert policy.info["num_exits"] == 6 and policy.info["method"] == method
            answers = [policy(images[i : i + 1])[:2] for i in test]
        with torch.inference_mode():
            runtime = [adaptive_forward(model, sched, normalize(images[i : i + 1], spec.mean, spec.std)) for i in test]
        exits = [a[1] for a in answers]
        assert exits == [int(e) for _, e in runtime] and len(set(exits)) > 1, method
        assert [a[0] for a in answers] == [int(p) for p, _ in runtime], method
        cached = sched.outputs({"probs": probs[:, 300:], "logits": logits[:, 300:]})
        assert exits == sched.assign(cached).tolist(), method
        if method != "patience":  # compiled kernels round otherwise than eager ones (~1e-7): no score sits that close to a threshold
            scores, thresholds = cached.max(dim=2).values[:5], torch.tensor(sched.policy.thresholds_[:5]).unsqueeze(1)
            assert (scores - thresholds).abs().min() > 1e-5, method


def test_an_eenet_fit_that_fell_back_to_maxpred_decides_as_maxpred_in_the_segments(run):
    """EENet's fit can fall back to MaxPred (``fallback_``): the runtime then decides as MaxPred, and so must the
    segments (and ``eenet export``'s program, which shares their code). Eager: no compile."""
    from eenet.compiled import ExitSegment
    from eenet.export import ExitProgram
    from eenet.models import load_model

    model, _ = load_model(str(run["res"] / "model.pt"))
    sched = scheduler_from_json(read_json(run["res"] / "schedulers" / "eenet" / "0.9.json"))
    sched.fallback_ = {"policy": "maxpred", "log_rho": 0.0}
    top = run["probs"].max(dim=2).values  # the tiny model is unsure: thresholds among its max probabilities
    sched.thresholds_ = [float(top[0].median()), float(top[1].median()), float("-inf")]
    program = ExitProgram(model, sched, run["spec"].mean, run["spec"].std).eval()
    segments = [ExitSegment(program, k) for k in range(model.num_exits)]
    with torch.inference_mode():
        answers = [chain(segments, run["test"].images[i : i + 1]) for i in range(N)]
        assert [int(program(run["test"].images[i : i + 1])[1]) for i in range(N)] == [a[1] for a in answers]
    labels, exits, _ = runtime_of(model, sched, run)
    assert [a[1] for a in answers] == exits == sched.assign(run["probs"]).tolist() and len(set(exits)) > 1
    assert [a[0] for a in answers] == labels
