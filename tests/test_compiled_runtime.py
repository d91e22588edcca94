"""The compiled runtime timed by the workflow (rule measure_compiled, compiled.csv) and compiled on every image
architecture: one compiled program per structure serves every budget of a policy (the learned tensors are inputs), it
decides and predicts as the cached evaluation, and compiled.csv's figures follow from one another. Each compile is
~5-20 s per exit (a C++ compiler)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
import yaml
from helpers import clone_run, snakemake

from eenet.data import DatasetSpec, normalize
from eenet.models import build_model
from eenet.schedulers import fit_policy

needs_compiler = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="AOTInductor needs a C++ compiler")


@pytest.fixture(scope="module")
def compiled_run(tiny_run, tmp_path_factory):
    """The tiny run with `compiled.methods: [maxpred, eenet]` (two budgets each) and its compiled.csv."""
    wd = clone_run(tiny_run, tmp_path_factory.mktemp("compiled"))
    path = wd / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["benchmarks"]["tiny"]["compiled"] = {"methods": ["maxpred", "eenet"], "samples": 60, "repeats": 2}
    path.write_text(yaml.safe_dump(cfg))
    snakemake(wd, "results/tiny/compiled.csv")
    with open(wd / "results/tiny/compiled.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return wd, rows


@needs_compiler
def test_the_workflow_times_compiled_policies_that_decide_as_the_cache_beside_the_compiled_cuts(compiled_run):
    from eenet.records import read_logits_cache

    wd, rows = compiled_run
    cuts = [r for r in rows if r["kind"] == "cut"]
    policies = {(r["method"], r["budget_value"]): r for r in rows if r["kind"] == "policy"}
    assert [r["method"] for r in cuts] == ["cut0", "cut1", "cut2"]
    assert set(policies) == {(m, b) for m in ("maxpred", "eenet") for b in ("0.75", "0.9")}
    # the compiled segments decide and answer as the cached evaluation, on the runtime's sample
    for r in policies.values():
        assert float(r["exits_agree"]) == 1.0 and float(r["preds_agree"]) == 1.0, r
        assert int(r["samples"]) == 60 and sum(json.loads(r["exit_histogram"])) == 60
    # one compile per structure: maxpred's budgets share one program, its learned thresholds given as inputs
    assert policies["maxpred", "0.9"]["compiled_with"] == policies["maxpred", "0.75"]["compiled_with"] == "maxpred/0.75"
    assert policies["maxpred", "0.9"]["compile_s"] == policies["maxpred", "0.75"]["compile_s"]
    assert json.loads(policies["maxpred", "0.9"]["exit_histogram"]) != json.loads(policies["maxpred", "0.75"]["exit_histogram"])
    # the figures follow from one another; the plain network is the last cut, timed in the same run
    tensors, _ = read_logits_cache(wd / "results/tiny/logits/test.safetensors", split="test")
    probs, labels = tensors["probs"], tensors["labels"]
    plain = float(cuts[-1]["compiled_ms"])
    for k, r in enumerate(cuts):
        assert float(r["plain_compiled_ms"]) == plain and int(r["exit"]) == k
        assert float(r["test_accuracy"]) == pytest.approx(float((probs[k].argmax(dim=1) == labels).float().mean()))
        assert float(r["speedup_vs_plain_test"]) == pytest.approx(plain / float(r["compiled_ms"]))
    for r in policies.values():
        scaled = float(r["compiled_ms"]) / float(r["simulated_ms"]) * float(r["test_simulated_ms"])
        assert float(r["test_compiled_ms"]) == pytest.approx(scaled)
        assert float(r["speedup_vs_plain_test"]) == pytest.approx(plain / scaled)
        assert float(r["compiled_vs_eager"]) == pytest.approx(float(r["compiled_ms"]) / float(r["eager_ms"]))
        evaluation = json.loads((wd / f"results/tiny/eval/{r['method']}/{r['budget_value']}.json").read_text())
        assert float(r["test_accuracy"]) == pytest.approx(evaluation["test_accuracy"])
    assert "compiled" in (wd / "logs/tiny/measure_compiled.log").read_text()
    dry = snakemake(wd, "-n", "results/tiny/compiled.csv")
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_compiled_methods_are_checked_when_the_workflow_is_planned(compiled_run, tmp_path):
    """The oracle (it reads the labels) and a policy the benchmark does not fit are refused before any job."""
    wd, _ = compiled_run
    path = wd / "config" / "config.yaml"
    original = path.read_text()
    try:
        for methods, says in ((["oracle"], "'oracle' is not one of its policies"), (["patience"], "'patience' is not one of its")):
            cfg = yaml.safe_load(original)
            cfg["benchmarks"]["tiny"]["compiled"]["methods"] = methods
            path.write_text(yaml.safe_dump(cfg))
            proc = snakemake(wd, "-n", "results/tiny/compiled.csv", check=False)
            assert proc.returncode != 0 and says in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
    finally:
        path.write_text(original)


# the image architectures, small: (architecture, builder arguments, channels, image size, the heads' last layer scaled by:
# its exits' scores spread apart, none saturated)
ARCHS = [
    ("resnet56_3", {"blocks": (1, 1, 1), "width": 4}, 3, 32, 100.0),
    ("densenet121_4", {"growth": 4, "blocks": (1, 1, 1, 1)}, 3, 32, 100.0),
    ("torchvision:resnet18", {"exits": ["layer1", "layer2"], "check_size": 32}, 3, 32, 1.0),
]


@needs_compiler
@pytest.mark.workflow  # not the workflow, but as slow: a compile per architecture
@pytest.mark.parametrize("arch, kwargs, channels, size, scale", ARCHS, ids=[a[0] for a in ARCHS])
def test_every_image_architecture_compiles_one_program_deciding_every_budget_as_the_cache(arch, kwargs, channels, size, scale, tmp_path):
    """small_cnn_3 and resnet_6 are compiled in test_compiled.py and above; MSDNet's stages pass several scales: refused."""
    from eenet.compiled import CompiledPolicy, compile_policy
    from eenet.export import ExitProgram

    torch.manual_seed(0)
    model = build_model(arch, 10, channels, **kwargs).eval()
    with torch.no_grad():  # heads less unsure than at initialisation: the exits' scores spread apart
        for head in model.heads:
            last = [m for m in head.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.mul_(scale)
    spec = DatasetSpec("rand", kind="idx", torchvision_class="FashionMNIST", raw_subdir="x", files={}, num_classes=10,
                       in_channels=channels, image_size=size, mean=(0.5,) * channels, std=(0.25,) * channels)  # fmt: skip
    images = torch.randint(0, 256, (240, channels, size, size), dtype=torch.uint8)
    with torch.inference_mode():
        logits = torch.stack(model(normalize(images, spec.mean, spec.std))).float()
    probs, labels = logits.softmax(dim=2), logits[-1].argmax(dim=1)
    costs = [float(k + 1) for k in range(model.num_exits)]
    val, test = slice(0, 180), slice(180, 240)
    budgets = [costs[0] + f * (costs[-1] - costs[0]) for f in (0.3, 0.7)]  # between the first exit's cost and the last's
    fits = [fit_policy("maxpred", {}, probs[:, val], logits[:, val], labels[val], costs, b) for b in budgets]
    package = compile_policy(model, fits[0], spec, {"arch": arch}, tmp_path / "p.pt2", {"method": "maxpred"}, swappable=True)
    policy = CompiledPolicy.load(package)
    histograms = []
    for sched in fits:
        policy.use(ExitProgram(model, sched, spec.mean, spec.std))
        answers = [policy(images[i : i + 1]) for i in range(180, 240)]
        exits = sched.assign(probs[:, test])
        # compiled kernels round otherwise than eager ones (~1e-7, docs/use.md): a score within 1e-6 of its threshold
        # may go either way, so those samples are left out (few: at least 45 of the 60 are compared)
        scores, thresholds = probs[:-1, test].max(dim=2).values, torch.tensor(sched.thresholds_[:-1]).unsqueeze(1)
        clear = ((scores - thresholds).abs() > 1e-6).all(dim=0)
        assert int(clear.sum()) >= 45, arch
        assert [a[1] for a, c in zip(answers, clear, strict=True) if c] == exits[clear].tolist(), arch
        want = probs[:, test].argmax(dim=2).gather(0, exits.view(1, -1))[0]
        assert [a[0] for a, c in zip(answers, clear, strict=True) if c] == want[clear].tolist(), arch
        histograms.append(torch.bincount(exits, minlength=model.num_exits).tolist())
    assert histograms[0] != histograms[1]  # the two budgets' thresholds, swapped into one program, decide differently
    quick = {"lr": 0.03, "epochs": 5, "patience": 5, "restarts": 1}
    eenet = fit_policy("eenet", quick, probs[:, val], logits[:, val], labels[val], costs, sum(budgets) / 2)
    with pytest.raises(ValueError, match="compiled for"):
        policy.use(ExitProgram(model, eenet, spec.mean, spec.std))


def test_msdnet_is_refused_with_the_reason(tmp_path):
    from eenet.compiled import compile_policy

    model = build_model("msdnet", 5, 3, blocks=3, base=1, step=1, channels=4, growth=4).eval()
    spec = DatasetSpec("rand", kind="idx", torchvision_class="FashionMNIST", raw_subdir="x", files={}, num_classes=5, in_channels=3,
                       image_size=224, mean=(0.5,) * 3, std=(0.25,) * 3)  # fmt: skip
    probs = torch.rand(model.num_exits, 40, 5).softmax(dim=2)
    sched = fit_policy("maxpred", {}, probs, probs.log(), probs[-1].argmax(dim=1), [1.0, 2.0, 3.0], 2.0)
    with pytest.raises(ValueError, match="msdnet under maxpred could not be compiled: its stages pass a list"):
        compile_policy(model, sched, spec, {"arch": "msdnet"}, tmp_path / "m.pt2", {"method": "maxpred"}, swappable=True)


@pytest.mark.parametrize("transform", ["resize", "imagenet"])
def test_an_image_folders_files_are_given_to_the_compiled_program_as_evaluation_decodes_them(tmp_path, transform):
    """An image folder is decoded on the fly (no images in memory): what the compiled program is given is exactly the
    decoded, resized image that evaluation normalises -- files of other sizes included (the new-user run that found
    rule measure_compiled reading `split.images`, which a folder does not have)."""
    from helpers import make_image_folder

    from eenet.data import ImageFolderSplit
    from eenet.measure.compiled_runtime import decoded_images

    root = make_image_folder(tmp_path / "f", {"": 4}, size=20, odd={"/circle/1": (31, 17), "/square/2": (12, 40)})
    files = sorted(str(p) for p in root.rglob("*.png"))
    spec = DatasetSpec("f", kind="imagefolder", torchvision_class="", raw_subdir="", files={}, num_classes=3, in_channels=3,
                       image_size=16, mean=(0.3, 0.5, 0.7), std=(0.2, 0.25, 0.3), transform=transform)  # fmt: skip
    split = ImageFolderSplit(files, torch.zeros(len(files), dtype=torch.int64), spec)
    idx = torch.tensor([0, 1, 5, 6, 11])
    got = decoded_images(split, idx, spec.mean, spec.std)
    assert got.dtype == torch.uint8 and tuple(got.shape) == (5, 3, 16, 16)
    want = torch.stack([split._decoded([files[i]], False)[0] for i in idx.tolist()])  # evaluation's decode, by Pillow
    assert torch.equal(got, want)
    assert torch.equal(normalize(got, spec.mean, spec.std), split.inputs(idx, torch.device("cpu")))
