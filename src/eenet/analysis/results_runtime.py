"""The measured sections of docs/results.md: the plain-network frontier (stats.csv's frontier columns), the adaptive
runtime against the plain network (runtime.csv), earlier runtime measurements (runtime_speed.csv), a user's own
chain (user_chain*.csv) and the many-exit runs' timings (many_exit_run.csv). Templates filled from the kept CSVs;
:mod:`eenet.analysis.results_doc` assembles the document."""

from __future__ import annotations

from eenet.analysis.results_sections import Rows, Run, against_frontier, has, interval, is_bound, ms, pct, plural, pts, span, statics, times

__all__ = [
    "frontier_section", "runtime_section", "clock_section", "frontier_networks", "earlier_runtime", "user_chain", "many_exit_table",
    "ratio", "seed_of",
]  # fmt: skip


def ratio(x: str | float) -> str:
    """A ratio with 2 decimals."""
    return f"{float(x):.2f}"


def frontier_section(run: Run) -> list[str]:
    """Each policy against the plain-network frontier at its measured latency (stats.csv's ``vs_frontier`` columns)."""
    rows = [r for r in run.use(run.stats) if has(r.get("vs_frontier")) and not is_bound(r["method"])]
    if not rows:
        return []
    k_last = max(int(c["exit"]) for c in run.cost) if run.cost else None
    statics = {r["method"]: r for r in run.use(run.summary) if r["method"].startswith("static_exit")}
    points = []
    for c in sorted(run.cost, key=lambda c: int(c["exit"])):
        k = int(c["exit"])
        t = c["plain_ms"] if k == k_last else c.get("cut_ms", "")
        acc = statics.get(f"static_exit{k}", {}).get("test_accuracy", "")
        if has(t):
            points.append(
                f"{'the plain network' if k == k_last else f'exit {k} alone'} {ms(t)} ms" + (f" ({pct(acc)} %)" if has(acc) else "")
            )
    methods = sorted({r["method"] for r in rows})
    budgets = sorted({r["budget_value"] for r in rows}, key=float)
    at = {(r["method"], r["budget_value"]): r for r in rows}

    def cell(r: dict[str, str] | None) -> str:
        if r is None:
            return ""
        # frontier_network (cut<k>, or a network trained alone: depth<k>, width<m>); frontier_exit in files written before it
        name = r.get("frontier_network") or f"cut{r['frontier_exit']}"
        who = ("plain" if k_last is not None and int(name[3:]) == k_last else f"exit {name[3:]}") if name.startswith("cut") else name
        return f"{interval(r, 'vs_frontier')} vs {who}"

    above = [r for r in rows if float(r["vs_frontier_ci_low"]) > 0]
    below = [r for r in rows if float(r["vs_frontier_ci_high"]) < 0]
    lines = [
        "### Against the plain-network frontier",
        "",
        "What a user could run instead of early exit: the network cut after one exit, with that exit's head only (the last cut is "
        f"the plain network), timed in the same run as the exits (cost.csv): {'; '.join(points)}. Each policy is placed at its "
        "measured latency at batch 1 on the whole test set, on cost.csv's clock (its measured time over the cost model's prediction "
        "from the single exits timed in the same job, times the prediction for every test sample), and compared with the most "
        "accurate cut no slower than it (test accuracy, "
        "points, paired bootstrap 95 % interval; stats.csv's `vs_frontier` columns, no multiple-comparison correction):",
        "",
        "| budget | " + " | ".join(f"`{m}`" for m in methods) + " |",
        "|---" * (len(methods) + 1) + "|",
        *(f"| {b} | " + " | ".join(cell(at.get((m, b))) for m in methods) + " |" for b in budgets),
        "",
        f"Above the frontier (interval above 0): {len(above)} of {len(rows)} policy-budget pairs; below it: {len(below)}.",
    ]
    return lines + [""]


def seed_of(row: dict[str, str]) -> str:
    """A row's training seed: stats.csv's ``seed``, else the ``seed<s>`` of runtime.csv's ``bench`` (``""``: none)."""
    if has(row.get("seed")):
        return row["seed"]
    bench = row.get("bench", "")
    return bench.rsplit("seed", 1)[1] if "/seed" in bench else ""


def _per_seed_table(rows: Rows, key: str, seeds: list[str]) -> list[str]:
    """Policies x budgets, each cell the seeds' values of ``key`` (points; ``*``: its interval above 0, ``-``: below)."""
    at = {(r["method"], r["budget_value"], seed_of(r)): r for r in rows if has(r.get(key))}
    methods = sorted({m for m, _, _ in at})
    budgets = sorted({b for _, b, _ in at}, key=float)

    def one(r: dict[str, str] | None) -> str:
        if r is None:
            return "·"
        mark = "*" if float(r[f"{key}_ci_low"]) > 0 else "-" if float(r[f"{key}_ci_high"]) < 0 else ""
        return f"{pts(r[key])}{mark}"

    lines = ["| policy | " + " | ".join(budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for m in methods:
        lines.append(f"| `{m}` | " + " | ".join(" / ".join(one(at.get((m, b, s))) for s in seeds) for b in budgets) + " |")
    return lines


def clock_section(run: Run) -> list[str]:
    """A many-exit run on the measured clock, seed by seed: the runtime's same-run check (runtime.csv's
    ``measured_vs_same_run``), each policy against the plain-network frontier and against MaxPred at its measured
    latency (stats.csv's ``vs_frontier`` and ``vs_maxpred_measured``), and the fastest policy within 0.5 points of the
    plain network's accuracy (runtime.csv's ``speedup_vs_plain_test``)."""
    seeds = run.seeds
    stats = [r for r in run.per_seed(run.stats) if r["budget_value"] != "all" and not is_bound(r["method"])]
    if not stats or not any(has(r.get("vs_frontier")) for r in stats):
        return []
    rt = [r for r in run.runtime if r["batch_size"] == "1" and has(r.get("budget_value")) and not is_bound(r["method"])]
    lines = ["#### On the measured clock", ""]
    checked = [float(r["measured_vs_same_run"]) for r in rt if has(r.get("measured_vs_same_run"))]
    if checked:
        outside = sum(abs(x - 1) > 0.1 for x in checked)
        lines += [
            "The runtime's own check (runtime.csv's `measured_vs_same_run`, batch 1: each policy's measured time over the cost "
            "model's prediction from the single exits timed in the same job, so that the machine's drift between jobs is left "
            f"out): {span(checked, ratio)} over {len(checked)} policy-budget runs of {plural(len(seeds), 'seed')}, "
            f"{outside} outside ±10 %.",
            "",
        ]
    lines += [
        f"Against the plain-network frontier at the policy's measured latency (stats.csv's `vs_frontier`; seeds "
        f"{' / '.join(seeds)}; *: interval above 0, -: below 0, ·: no frontier point as fast):",
        "",
        *_per_seed_table(stats, "vs_frontier", seeds),
        "",
    ]
    wins = {}
    for r in stats:
        if has(r.get("vs_frontier_ci_low")) and float(r["vs_frontier_ci_low"]) > 0:
            wins.setdefault((r["method"], r["seed"]), set()).add(r["budget_value"])
    every = sorted({m for m, _ in wins if all(len(wins.get((m, s), ())) >= 2 for s in seeds)})
    lines += [f"Above the frontier at 2 or more budgets in every seed: {', '.join(f'`{m}`' for m in every) or 'none'}.", ""]
    lines += _frontier_over_seeds(run)
    if any(has(r.get("vs_maxpred_measured")) for r in stats):
        lines += [
            "Against MaxPred at the policy's measured latency (stats.csv's `vs_maxpred_measured`: MaxPred's accuracy "
            "interpolated between its budgets at their measured latencies; batch 1):",
            "",
            *_per_seed_table(stats, "vs_maxpred_measured", seeds),
            "",
        ]
    singles = statics(run.per_seed(run.summary))
    plain = {r["seed"]: float(r["test_accuracy"]) for r in singles if r["method"] == singles[-1]["method"]} if singles else {}
    speed = {(r["method"], r["budget_value"], seed_of(r)): r.get("speedup_vs_plain_test") for r in rt}
    best = []
    for s in seeds:
        near = [r for r in stats if r["seed"] == s and s in plain and float(r["test_accuracy"]) >= plain[s] - 0.005
                and has(speed.get((r["method"], r["budget_value"], s)))]  # fmt: skip
        if near:
            r = max(near, key=lambda r: float(speed[(r["method"], r["budget_value"], s)]))
            gap = pts(float(r["test_accuracy"]) - plain[s])
            best.append(f"seed {s}: `{r['method']}` at {r['budget_value']}, {gap} points, "
                        f"{times(speed[(r['method'], r['budget_value'], s)])}")  # fmt: skip
        else:
            best.append(f"seed {s}: no policy within 0.5 points")
    lines += [
        "The fastest policy at no more than 0.5 points below the plain network's accuracy (the last exit's), its speed-up over "
        f"the plain network on the whole test set (runtime.csv's `speedup_vs_plain_test`): {'; '.join(best)}.",
        "",
    ]
    return lines


def frontier_networks(run: Run, rows: Rows) -> list[str]:
    """The plain networks of a run's frontier, cut and trained alone (``<run>_frontier.csv``, written by
    benchmarks/frontier_networks.py): mean ms and test accuracy over seeds; the plain network trained alone against the
    multi-exit network's last exit, and the best policy against it."""
    if not rows:
        return []
    nets = list(dict.fromkeys(r["network"] for r in rows))
    by = {n: [r for r in rows if r["network"] == n] for n in nets}

    def mean(n: str, k: str) -> float:
        return sum(float(r[k]) for r in by[n]) / len(by[n])

    def accs(n: str) -> str:
        a = [float(r["test_accuracy"]) for r in by[n]]
        return pct(sum(a) / len(a)) + (f" ({pct(min(a))}–{pct(max(a))})" if len(a) > 1 else "")

    lines = [
        f"The networks of the frontier (`benchmarks/out/{run.prefix}_frontier.csv`, `python benchmarks/frontier_networks.py --run "
        f"{run.prefix}`; ms per sample at batch 1 on cost.csv's clock, test accuracy, mean over seeds (lowest–highest)):",
        "",
        "| network | kind | ms | test accuracy (%) |",
        "|---|---|---|---|",
        *(f"| `{n}` | {by[n][0]['kind']} | {ms(mean(n, 'ms'))} | {accs(n)} |" for n in nets),
        "",
    ]
    cuts = [n for n in nets if by[n][0]["kind"] == "cut"]
    alone = [n for n in nets if n.startswith("depth")]
    same_depth = {c: f"depth{int(c.removeprefix('cut')) + 1}" for c in cuts}  # cut<k> has the architecture of depth<k+1>
    pairs = [(c, d) for c, d in same_depth.items() if d in by]
    if pairs:
        lines += [
            "Each exit of the multi-exit network against the network of the same depth trained alone (test accuracy, %, mean over "
            "seeds): " + "; ".join(f"exit {c.removeprefix('cut')} {pct(mean(c, 'test_accuracy'))} vs {pct(mean(d, 'test_accuracy'))}"
                                   for c, d in pairs) + ".",
            "",
        ]  # fmt: skip
    if cuts and alone:
        last, full = cuts[-1], max(alone, key=lambda n: int(n.removeprefix("depth")))
        best = [r for r in run.use(run.stats) if r["budget_value"] != "all" and not is_bound(r["method"]) and has(r.get("test_accuracy"))]
        top = max(best, key=lambda r: float(r["test_accuracy"])) if best else None
        lines += [
            f"The plain network trained alone (`{full}`, {ms(mean(full, 'ms'))} ms) reaches {pct(mean(full, 'test_accuracy'))} %, the "
            f"multi-exit network's last exit alone (`{last}`, {ms(mean(last, 'ms'))} ms) {pct(mean(last, 'test_accuracy'))} %"
            + (
                f"; the most accurate policy at any budget (`{top['method']}` at {top['budget_value']}) {pct(top['test_accuracy'])} %, "
                f"{pts(float(top['test_accuracy']) - mean(full, 'test_accuracy'))} points from the plain network trained alone."
                if top
                else "."
            ),
            "",
        ]
    return lines


def _frontier_over_seeds(run: Run) -> list[str]:
    """The seed study against the frontier (stats.csv's ``mean`` rows: each seed against its own competitor, the mean
    advantage with its two-level interval and Holm-adjusted p-value), and what is ahead of it at 2 or more budgets."""
    rows = [r for r in run.stats if r.get("seed") == "mean" and r["budget_value"] != "all" and not is_bound(r["method"])
            and has(r.get("vs_frontier_seed_ci_low"))]  # fmt: skip
    if not rows:
        return []
    methods = sorted({r["method"] for r in rows})
    budgets = sorted({r["budget_value"] for r in rows}, key=float)
    at = {(r["method"], r["budget_value"]): r for r in rows}

    def cell(r: dict[str, str] | None) -> str:
        return "·" if r is None else f"{interval(r, 'vs_frontier')}{({1: '*', -1: '-'}).get(against_frontier(r), '')}"

    wins: dict[str, int] = {}
    for r in rows:
        wins[r["method"]] = wins.get(r["method"], 0) + (against_frontier(r) > 0)
    nets = sorted({n for r in rows for n in r["frontier_network"].split("/")})
    lines = [
        f"Over the seeds, each seed against its own frontier (stats.csv's `mean` rows: the mean advantage, points, with its 95 % "
        f"interval over seeds and test samples; *: ahead, Holm-adjusted p < 0.05 over its {len(rows)} comparisons, -: behind "
        f"likewise, ·: a seed without a frontier point as fast). The competitors met: {', '.join(f'`{n}`' for n in nets)}.",
        "",
        "| policy | " + " | ".join(budgets) + " |",
        "|---" * (len(budgets) + 1) + "|",
        *(f"| `{m}` | " + " | ".join(cell(at.get((m, b))) for b in budgets) + " |" for m in methods),
        "",
        "Ahead of the frontier over seeds at 2 or more budgets: "
        + (", ".join(f"`{m}`" for m in methods if wins[m] >= 2) or "none")
        + f"; behind it: {sum(against_frontier(r) < 0 for r in rows)} of {len(rows)}.",
        "",
    ]
    return lines


def _runtime_table(rows: Rows, batch: str) -> list[str]:
    """Per budget and policy at one batch size: measured ms per sample and the speed-up over the plain network."""
    at = [r for r in rows if r["batch_size"] == batch]
    methods = sorted({r["method"] for r in at if has(r.get("budget_value"))})
    budgets = sorted({r["budget_value"] for r in at if has(r.get("budget_value"))}, key=float)
    get = {(r["method"], r["budget_value"]): r for r in at}
    lines = ["| budget | " + " | ".join(f"`{m}`" for m in methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for b in budgets:
        cells = [f"{ms(get[m, b]['measured_ms'])} ({times(get[m, b]['speedup_vs_plain'])})" if (m, b) in get else "" for m in methods]
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    statics = sorted((r for r in at if r["method"].startswith("static_exit")), key=lambda r: r["method"])
    if statics:
        exits = ", ".join(
            f"exit {r['method'].removeprefix('static_exit')} {ms(r['measured_ms'])} ms ({times(r['speedup_vs_plain'])})" for r in statics
        )
        lines += ["", f"Each exit alone: {exits}."]
    return lines


def runtime_section(run: Run) -> list[str]:
    """The adaptive runtime against the plain network, per batch size (runtime.csv)."""
    rows = [r for r in run.runtime if has(r.get("measured_ms")) and has(r.get("speedup_vs_plain"))]
    if not rows:
        return []
    r0 = rows[0]
    lines = [
        "### The adaptive runtime against the plain network",
        "",
        f"`benchmarks/out/{run.prefix}_runtime.csv`: every policy run for real by the adaptive runtime on {int(r0['samples']):,} test "
        f"samples, {plural(r0['threads'], 'thread')}, {r0['device']}, torch {r0['torch_version']}. A speed-up is over the plain network "
        "(every stage and the last head, no intermediate head, no decision), timed in the same job.",
    ]
    one = next((r for r in rows if r["batch_size"] == "1"), None)
    for batch in sorted({r["batch_size"] for r in rows}, key=int):
        at = [r for r in rows if r["batch_size"] == batch]
        pol = [r for r in at if has(r.get("budget_value")) and not is_bound(r["method"])]
        ex = [r for r in at if r["method"].startswith("static_exit")]
        budgets = sorted({r["budget_value"] for r in pol}, key=float)
        slower = [b for b in budgets if any(float(r["speedup_vs_plain"]) < 1 for r in pol if r["budget_value"] == b)]
        all_slow = [b for b in budgets if all(float(r["speedup_vs_plain"]) < 1 for r in pol if r["budget_value"] == b)]
        text = f"**Batch {batch}**: the plain network {ms(at[0]['plain_ms'])} ms per sample, `model(x)` with every head "
        text += f"{ms(at[0]['full_ms'])} ms. Policies: ms per sample (speed-up over the plain network):"
        lines += ["", text, "", *_runtime_table(rows, batch), ""]
        slow = f"Budgets at which some policy is slower than the plain network: {', '.join(slower) or 'none'}; "
        slow += f"every policy: {', '.join(all_slow) or 'none'}."
        if batch == "1":
            lines.append(
                f"Measured ÷ simulated (cost.csv's costs of the same exits): {span((r['measured_vs_simulated'] for r in pol), ratio)} "
                f"over the policies, {span((r['measured_vs_simulated'] for r in ex), ratio)} for the single exits. {slow}"
            )
            same = [float(r["measured_vs_same_run"]) for r in pol if has(r.get("measured_vs_same_run"))]
            if same:
                lines[-1] += (
                    " The runtime's own check (`measured_vs_same_run`: over the cost model's prediction from the single exits timed in "
                    f"the same job): {span(same, ratio)} over {len(same)} policy-budget runs, {sum(abs(x - 1) > 0.1 for x in same)} "
                    "outside ±10 %."
                )
        else:
            share = f"{float(at[0]['plain_ms']) / float(one['plain_ms']):.2f} of its batch-1 cost" if one else "a cost"
            lines.append(
                f"{slow} Per sample, a batch of {batch} costs the plain network {share}: the simulated cost (timed at batch 1) "
                "does not describe batched runs."
            )
    return lines + [""]


def earlier_runtime(rows: Rows) -> list[str]:
    """Earlier runtime measurements (runtime_speed.csv): per date, device, model and batch the ranges of its rows."""
    if not rows:
        return []
    groups: dict[tuple[str, str, str, str], Rows] = {}
    for r in rows:
        groups.setdefault((r["date"], r["device"], r["model"], r["batch"]), []).append(r)
    lines = [
        "Earlier measurements, before the plain network was timed (`benchmarks/out/runtime_speed.csv`, speed-ups over `model(x)` "
        "with every head):",
        "",
        "| date | device | model | batch | runs | measured ÷ simulated | speed-up over `model(x)` |",
        "|---|---|---|---|---|---|---|",
    ]
    for (date, device, model, batch), g in groups.items():
        lines.append(f"| {date} | {device} | `{model}` | {batch} | {len(g)} | {span((r['measured_vs_simulated'] for r in g), ratio)} "
                     f"| {span((r['speedup_vs_full'] for r in g), times)} |")  # fmt: skip
    return lines + [""]


def user_chain(measures: Rows, runtime: Rows) -> list[str]:
    """A user's own benchmark through the whole chain (user_chain.csv, user_chain_runtime.csv)."""
    if not measures:
        return []
    m = {r["measure"]: r["value"] for r in measures}
    one = [r for r in runtime if r["batch_size"] == "1" and not r["method"].startswith("static_exit")]
    where = f" on {one[0]['device']}, torch {one[0]['torch_version']}" if one else ""
    text = (f"A user's own benchmark through the whole chain (`benchmarks/user_chain.py`; `benchmarks/out/user_chain*.csv`{where}): "
            f"{float(m['chain_s']):.0f} s in all, of which training {float(m['train_multiexit_s']):.0f} s and the runtime measurement "
            f"{float(m['measure_runtime_s']):.0f} s; {m['runtime_rows_batch1']} policy-budget runs at batch 1 on {m['runtime_samples']} "
            f"samples, measured ÷ simulated {ratio(m['measured_vs_simulated_min'])}–{ratio(m['measured_vs_simulated_max'])} "
            f"(median {ratio(m['measured_vs_simulated_median'])})")  # fmt: skip
    mp = [r for r in one if r["method"] == "maxpred" and has(r.get("speedup_vs_plain"))]
    if mp:
        text += f"; MaxPred {span((r['speedup_vs_plain'] for r in mp), times)} over the plain network ({ms(m['plain_ms_batch1'])} ms)"
    return [text + ".", ""]


def many_exit_table(rows: Rows) -> list[str]:
    """Training, fitting and measuring times of the many-exit runs (many_exit_run.csv)."""
    if not rows:
        return []
    lines = [
        "Times of the runs (`benchmarks/out/many_exit_run.csv`, `python benchmarks/many_exit_run.py`):",
        "",
        "| run | epochs | training (min) | median epoch (s) | test accuracy per exit (%) | policies | fit EENet variants (min) "
        "| fit the others (min) | evaluations (min) | runtime measurement (s) | frontier networks trained alone | their training (min) |",
        "|---" * 12 + "|",
    ]
    keys = ("run", "epochs", "train_min", "epoch_s_median", "test_acc_per_exit", "policies", "fit_min_eenet", "fit_min_others", "eval_min",
            "measure_runtime_s", "frontier_networks", "frontier_train_min")  # fmt: skip
    lines += ["| " + " | ".join(f"`{r[k]}`" if k == "run" else r.get(k) or "–" for k in keys) + " |" for r in rows]
    return lines + [""]
