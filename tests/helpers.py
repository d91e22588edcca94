"""What the tests share: the workflow copy and its Snakemake runs, small inputs in the formats the package reads, a
loopback mirror. Not a test module: test modules import from here (and from nothing else in tests/); fixtures are in
conftest.py."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

REPO = Path(__file__).resolve().parents[1]
FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(not FMNIST.is_dir(), reason="the packaged Fashion-MNIST (dataset-fashion-mnist) is not installed")

# ---------------------------------------------------------------------------------------------------
# a copy of the workflow, and Snakemake in it

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGET = "results/tiny/curve.pdf"
COPIED = ["Snakefile", "rules", "workflow", "src", "profiles", "envs"]


def workflow_env(workdir: Path) -> dict[str, str]:
    """The environment of Snakemake run in ``workdir``, a copy of the workflow: offline, and its jobs run the copy's
    own package (a test may edit it)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(workdir / "src")}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Snakemake in ``workdir`` (:func:`workflow_env`)."""
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2", *args], cwd=workdir, capture_output=True, text=True, env=workflow_env(workdir),
                          timeout=900)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned_jobs(workdir: Path) -> dict[str, int]:
    """Rule -> number of jobs a dry run of the target would execute ({} when up to date)."""
    proc = snakemake(workdir, "-n", TARGET)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1]
    jobs = {}
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def copy_workflow(dest: Path, config: str | None = None, extra: tuple[str, ...] = ()) -> Path:
    """A copy of the workflow (``COPIED`` and ``extra``) in ``dest``; ``config``: the text of its config/config.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in [*COPIED, *extra]:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    if config is not None:
        (dest / "config").mkdir(exist_ok=True)
        (dest / "config" / "config.yaml").write_text(config)
    return dest


def tiny_config() -> str:
    """The text of tests/config/tiny.yaml: the benchmark ``tiny``, a few hundred Fashion-MNIST images, one epoch."""
    return (REPO / "tests" / "config" / "tiny.yaml").read_text()


def edit_config(workdir: Path, change) -> str:
    """``change(benchmark)`` applied to the ``tiny`` benchmark of ``workdir``'s config; returns the config's old text."""
    path = workdir / "config" / "config.yaml"
    original = path.read_text()
    cfg = yaml.safe_load(original)
    change(cfg["benchmarks"]["tiny"])
    path.write_text(yaml.safe_dump(cfg))
    return original


def clone_run(run: Path, dest: Path) -> Path:
    """A copy of a finished run (workflow, data, results, logs, Snakemake's records; timestamps kept), in which
    Snakemake finds nothing to do."""
    shutil.copytree(run, dest, symlinks=True, dirs_exist_ok=True)
    return dest


# ---------------------------------------------------------------------------------------------------
# exits' outputs: probabilities with the structure of a real multi-exit network, and a network's own

COSTS = [0.3, 0.65, 1.0]


def make_probs(n: int = 2000, k: int = 3, c: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax outputs ``[K, N, C]`` where later exits are more accurate and confidence tracks correctness."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (n,), generator=g)
    difficulty = torch.rand(n, generator=g)  # shared across exits, as in a real network
    probs = []
    for j in range(k):
        logits = torch.randn(n, c, generator=g) * 1.2
        strength = (1.0 + 1.5 * j) * (1.2 - difficulty) * 3
        logits[torch.arange(n), labels] += strength
        probs.append(torch.softmax(logits, dim=1))
    return torch.stack(probs), labels


def make_inputs(kind: tuple, n: int, seed: int):
    """``n`` random model inputs of ``kind``: ``("image", C, H)`` (float64 images) or ``("text", vocabulary)``."""
    g = torch.Generator().manual_seed(seed)
    if kind[0] == "image":
        return torch.randn(n, kind[1], kind[2], kind[2], generator=g, dtype=torch.float64)
    length = 12
    ids = torch.randint(1000, kind[1], (n, length), generator=g)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def cached_probs(model, x) -> torch.Tensor:
    """What cache_logits stores for these inputs: the softmax of every exit, ``[K, N, C]``."""
    with torch.inference_mode():
        return torch.stack([F.softmax(z.float(), dim=1) for z in model(x)])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread for the module that imports this fixture (autouse there), as under `make test`'s workers
    (conftest.py): a learned rule's fit is hundreds of tiny steps, which OpenMP threads on a loaded 2-core machine slow
    fifty-fold (74 s against 1.5 s, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def accuracy_of(probs: torch.Tensor, labels: torch.Tensor, exits: torch.Tensor) -> float:
    """Accuracy of the exits ``int64 [N]`` a policy assigns, on ``probs [K, N, C]`` and ``labels [N]``."""
    from eenet.schedulers import exit_predictions

    return float((exit_predictions(probs, exits) == labels).double().mean())


def runs_as_it_assigns(method: str, fit_kwargs: dict, fit) -> None:
    """Fit ``method`` (``make_scheduler(method, **fit_kwargs)``, then ``fit(sched, val_probs)``) on a small random CNN's
    outputs and check that the adaptive runtime leaves every one of 40 inputs where :meth:`assign` sends them, batched
    and, for every 7th, at batch 1 (:meth:`leaves_one`)."""
    from eenet.measure.runtime import adaptive_forward
    from eenet.models import build_model
    from eenet.schedulers import make_scheduler

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 10, 1, width=4).double().eval()
    val = cached_probs(model, make_inputs(("image", 1, 28), 300, 1))
    fitted = fit(make_scheduler(method, **fit_kwargs), val)
    x = make_inputs(("image", 1, 28), 40, 3)
    want = fitted.assign(cached_probs(model, x))
    assert torch.equal(adaptive_forward(model, fitted, x)[1], want)
    for i in range(0, 40, 7):  # batch 1: leaves_one
        assert int(adaptive_forward(model, fitted, x[i : i + 1])[1]) == int(want[i])


MEAN, STD = (0.5,), (0.25,)


def band_split(n: int = 96, seed: int = 0, pad: int = 1, flip: bool = True):
    """A learnable 3-class image split (an ``ImageSplit``): class y has a bright band at rows 9y..9y+8."""
    from eenet.data import ImageSplit

    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = (torch.rand(n, 1, 28, 28, generator=g) * 60).to(torch.uint8)
    for i, y in enumerate(labels.tolist()):
        images[i, 0, y * 9 : y * 9 + 9] = 255
    return ImageSplit(images, labels, MEAN, STD, pad, flip)


# ---------------------------------------------------------------------------------------------------
# datasets in their real file formats, and a loopback mirror that serves them


def idx_bytes(array: torch.Tensor) -> bytes:
    """Encode a uint8 tensor in the IDX format (the MNIST files' real format)."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.contiguous().numpy().tobytes()


def idx_mirror(mirror: Path, seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A 12 + 5 image dataset in Fashion-MNIST's files (gzipped IDX) in ``mirror``: (the arrays, their sha256)."""
    g = torch.Generator().manual_seed(seed)
    arrays = {
        "train-images-idx3-ubyte": torch.randint(0, 256, (12, 28, 28), generator=g, dtype=torch.uint8),
        "train-labels-idx1-ubyte": torch.randint(0, 10, (12,), generator=g, dtype=torch.uint8),
        "t10k-images-idx3-ubyte": torch.randint(0, 256, (5, 28, 28), generator=g, dtype=torch.uint8),
        "t10k-labels-idx1-ubyte": torch.randint(0, 10, (5,), generator=g, dtype=torch.uint8),
    }
    mirror.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, arr in arrays.items():
        raw = idx_bytes(arr)
        (mirror / f"{name}.gz").write_bytes(gzip.compress(raw))
        files[name] = hashlib.sha256(raw).hexdigest()
    return arrays, files


def cifar_archive(path: Path, spec, n_per_file: int = 6, seed: int = 0) -> tuple[str, dict[str, torch.Tensor]]:
    """A CIFAR binary archive (real layout and record format) at ``path`` for the ``DatasetSpec`` ``spec``; returns
    (md5, the records)."""
    from eenet import data

    train, test, label_bytes = data.CIFAR_MEMBERS[spec.name]
    g = torch.Generator().manual_seed(seed)
    records = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in train + test:
            labels = torch.randint(0, spec.num_classes, (n_per_file, label_bytes), generator=g, dtype=torch.uint8)
            pixels = torch.randint(0, 256, (n_per_file, 3072), generator=g, dtype=torch.uint8)
            rows = torch.cat([labels, pixels], 1)
            records[name] = rows
            payload = rows.numpy().tobytes()
            info = tarfile.TarInfo(f"{spec.raw_subdir}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        meta = b"airplane\n"
        info = tarfile.TarInfo(f"{spec.raw_subdir}/batches.meta.txt")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return hashlib.md5(path.read_bytes()).hexdigest(), records


class MirrorHandler(SimpleHTTPRequestHandler):
    """Serves a directory; a file named in ``cut`` is announced whole and sent half."""

    cut: set[str] = set()

    def copyfile(self, source, outputfile):
        data = source.read()
        if Path(self.path).name in self.cut:
            outputfile.write(data[: len(data) // 2])
            outputfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        outputfile.write(data)

    def log_message(self, *args):
        pass


def serve(directory, cut=()):
    """A loopback HTTP mirror of ``directory`` (``cut``: file names sent truncated): (the server, its URL)."""
    handler = type("H", (MirrorHandler,), {"cut": set(cut)})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


# ---------------------------------------------------------------------------------------------------
# small datasets of your own, made on the fly in the formats a config can declare: an image folder of generated
# images, tables of texts with string labels (CSV, parquet, JSON lines), a tiny BERT-like model directory

CLASSES = ("circle", "square", "stripes")
WORDS = {
    "good": "great fine superb lovely bright warm".split(),
    "bad": "awful dull poor grim tired cold".split(),
    "meh": "plain okay average middling so so".split(),
}


def make_image_folder(
    root: Path, per_class: dict[str, int], size: int = 16, seed: int = 0, odd: dict[str, tuple[int, int]] | None = None
) -> Path:
    """``root/<part>/<class>/<i>.png`` for each ``part -> images per class``: three classes whose images differ in
    colour (so a network can learn them), with noise. ``odd``: ``"<part>/<class>/<i>" -> (width, height)``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = {"circle": (200, 40, 40), "square": (40, 200, 40), "stripes": (40, 40, 200)}
    for part, n in per_class.items():
        for cls in CLASSES:
            folder = root / part / cls if part else root / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = (odd or {}).get(f"{part}/{cls}/{i}", (size, size))
                pixels = np.clip(np.array(colours[cls]) + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def make_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` short texts and their string labels (good / bad / meh), each text made of its label's words."""
    rng = np.random.default_rng(seed)
    labels = [str(rng.choice(list(WORDS))) for _ in range(n)]
    texts = [" ".join(rng.choice(WORDS[y], size=int(rng.integers(3, 8)))) for y in labels]
    return texts, labels


def make_tiny_bert(root: Path, layers: int = 2, weights: bool = False, dropout: float = 0.1) -> Path:
    """A BERT-like model directory from a local config and a word-level vocabulary (no download); ``weights``: with
    the weights of a random initialisation saved as a pre-trained model's are; ``dropout``: of its layers."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w for ws in WORDS.values() for w in ws})]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )  # fmt: skip
    config.save_pretrained(root)
    if weights:
        import torch

        torch.manual_seed(0)
        BertModel(config).save_pretrained(root)
    return root


# ---------------------------------------------------------------------------------------------------
# a clock for timing code: time passes only where the test says


class FakeClock:
    """A stand-in for :func:`time.perf_counter` (the ``clock`` of the timing functions): ``clock()`` returns
    :attr:`now`, in seconds, which moves only by :meth:`advance` (work the test says takes that long) and by ``tick``
    at every read (the cost of reading it); :attr:`reads` counts the reads."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now, self.tick, self.reads = 0.0, tick, 0

    def __call__(self) -> float:
        self.reads += 1
        now = self.now
        self.now += self.tick
        return now

    def advance(self, seconds: float) -> None:
        """Time passes: ``seconds`` of work."""
        self.now += seconds


# ---------------------------------------------------------------------------------------------------
# the commands the documents show: tests/test_readme.py holds each to a test that runs it as written, or to the reason
# it is not run

DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")), "benchmarks/RESULTS.md"]
"""The documents whose shell blocks (```bash, ```sh, ```shell) hold commands a user runs."""
SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell)\n(.*?)```", re.S)
NOT_OURS = ("git add ",)  # git's own commands


def shell_commands(text: str) -> list[str]:
    """The commands of a Markdown text's shell blocks, without trailing comments, in order, each once."""
    lines = [line.split("  #")[0].split(" # ")[0].strip() for block in SHELL_BLOCK.findall(text) for line in block.splitlines()]
    return list(dict.fromkeys(c for c in lines if c and not c.startswith("#") and not c.startswith(NOT_OURS)))


def documented_commands() -> dict[str, list[str]]:
    """Every command of :data:`DOCUMENTS` -> the documents that show it."""
    found: dict[str, list[str]] = {}
    for doc in DOCUMENTS:
        for command in shell_commands((REPO / doc).read_text()):
            found.setdefault(command, []).append(doc)
    return found


def documented(command: str) -> str:
    """``command``, checked to be one a document shows, character for character: a test or benchmark that runs a
    documented command takes it from here, written out in the call (tests/test_readme.py finds it by this call)."""
    if command not in documented_commands():
        raise AssertionError(f"no document shows the command {command!r} (README.md, docs/*.md): update the test that runs it")
    return command


def exits_step_by_step(sched, probs: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """The exits a policy's :meth:`leaves` gives exit after exit (batched) over ``probs [K, N, C]``, and those its
    :meth:`leaves_one` gives sample by sample: what the runtime calls, to compare with :meth:`assign`."""
    k_exits, n, _ = probs.shape
    exits, running = torch.full((n,), -1), torch.arange(n)
    for k in range(k_exits):
        out = sched.leaves(k, [probs[j, running] for j in range(k + 1)])
        exits[running[out]] = k
        running = running[~out]
    one = [next(k for k in range(k_exits) if sched.leaves_one(k, [probs[j, i : i + 1] for j in range(k + 1)])) for i in range(n)]
    return exits, one


def tiny_test_images(tiny_run: Path, n: int, name: str) -> dict:
    """The tiny run's results folder, its test split, its first ``n`` test images written once as PNG files (in a
    folder beside the run named ``<run>-<name>``) and their cached test probabilities and logits ``[K, n, C]``."""
    from PIL import Image

    from eenet.data import DatasetSpec
    from eenet.data.prepare import open_benchmark
    from eenet.io import load_tensors

    res = tiny_run / "results" / "tiny"
    spec = DatasetSpec.from_manifest(tiny_run / "data" / "fashion_mnist" / "manifest.json")
    test = open_benchmark(spec, tiny_run / "data" / "fashion_mnist", "small_cnn_3", {"width": 4}, None, ("test",))["test"]
    folder = tiny_run.parent / f"{tiny_run.name}-{name}"
    if not folder.is_dir():  # written aside, then renamed: a test on another worker never sees half of it
        part = tiny_run.parent / f"{folder.name}.{os.getpid()}"
        part.mkdir()
        for i in range(n):
            Image.fromarray(test.images[i, 0].numpy(), mode="L").save(part / f"sample{i:03d}.png")
        try:
            part.rename(folder)
        except OSError:  # another worker's, the same images, came first
            shutil.rmtree(part)
    tensors, _ = load_tensors(res / "logits" / "test.safetensors")
    return {"res": res, "images": folder, "test": test, "probs": tensors["probs"][:, :n], "logits": tensors["logits"][:, :n], "spec": spec}


def exits_from_logits_step_by_step(sched, logits: torch.Tensor) -> torch.Tensor:
    """The exits ``int64 [N]`` a policy's :meth:`leaves` gives as the runtime runs it on raw ``logits [K, N, C]``:
    exit after exit, :meth:`exit_state` of each exit and :meth:`outputs_from_states` of those so far, for the samples
    still running (a combined policy's incremental combiner step; the softmax otherwise), then :meth:`leaves`."""
    k_exits, n, _ = logits.shape
    got, running = torch.full((n,), -1), torch.arange(n)
    for k in range(k_exits):
        states = [sched.exit_state(j, logits[j, running]) for j in range(k + 1)]
        seen = [sched.outputs_from_states(j, states[: j + 1], logits[j, running]) for j in range(k + 1)]
        out = sched.leaves(k, seen)
        got[running[out]] = k
        running = running[~out]
    return got
