"""`python -m analysis.report RESULTS -o OUT [--landscape]`: everything on one self-contained HTML page.

Figure 3 (eigenvalue curves), Table 4 (eigenvalue per MS-DARTS bandwidth, final epoch and whole
search), the test-regret curves and final table, Figure 4 (loss against distance to the final alphas),
the one-shot vs ground-truth correlation (runs with `correlation_every`),
optionally the accuracy landscapes (`--landscape`: needs checkpoints and the search data; one run per
optimizer and space, the lowest complete seed), the seeds behind every number, the settings that differ
between runs, and every data problem found. Images are embedded as base64 PNG, so OUT/report.html can
be mailed or archived on its own. A part the data cannot support says why instead of failing the page.
"""

from __future__ import annotations

import argparse
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from analysis import cli, correlation, export, figure3, figure4, issues, plotting, regret, settings, table4
from analysis.issues import Issue
from analysis.load import AnalysisError, Results, machine_lines
from analysis.names import benchmark_title

REPORT_HTML = "report.html"
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.2em .6em}
th{background:#f3f3f3}img{max-width:100%}figcaption,.note{font-size:.85em;color:#555}
.na{color:#a33}.warn{color:#8a5a00}code{background:#f5f5f5;padding:0 .2em}
"""


@dataclass
class Section:
    title: str
    body: str
    issues: list[Issue] = field(default_factory=list)


def _figure(fig: Figure, caption: str) -> str:
    src = "data:image/png;base64," + plotting.png_base64(fig)
    cap = html.escape(caption)
    return f'<figure><img src="{src}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'


def _notes(lines: Sequence[str]) -> str:
    return "".join(f'<p class="note">{html.escape(n)}</p>' for n in lines if n)


def figure3_section(res: Results, log: bool = False) -> Section:
    f3 = figure3.compute(res)
    body = _figure(figure3.plot(f3, res, log), f3.caption)
    return Section("Figure 3: dominant Hessian eigenvalue during search", body, f3.issues)


def table4_section(res: Results) -> Section:
    parts, found = [], []
    for over in table4.OVER:
        t4 = table4.compute(res, over)
        parts.append(f"<h3>over = {over}</h3>" + export.html_table(table4.shown(t4)) + _notes(t4.notes))
        found += t4.issues
    t4 = table4.compute(res, "final")
    parts.append(
        _figure(table4.plot(t4, res), "Eigenvalue at the final epoch against the bandwidth h (log x).")
    )
    return Section("Table 4: eigenvalue per MS-DARTS bandwidth", "".join(parts), found)


def regret_section(res: Results) -> Section:
    reg = regret.compute(res)
    body = _figure(regret.plot(reg, res), "Test regret per epoch (log y), mean over seeds with 95% t-band.")
    body += "<h3>Final epoch</h3>" + export.html_table(regret.shown(reg)) + _notes(reg.notes)
    return Section("Test regret (NAS-Bench-1Shot1 style)", body, reg.issues)


def correlation_section(res: Results) -> Section:
    corr = correlation.compute(res)
    body = _figure(correlation.plot(corr, res, "spearman_valid"), corr.caption)
    body += _figure(correlation.plot(corr, res, "top10_overlap_valid"), "Top-10 % overlap, same models.")
    return Section("One-shot vs ground-truth correlation (NAS-Bench-1Shot1)", body, corr.issues)


def figure4_section(res: Results) -> Section:
    f4 = figure4.compute(res)
    if f4.stats.empty:
        raise AnalysisError("no complete run with a readable alphas.npz in the selection")
    body = _figure(figure4.plot(f4, res), "One-shot training loss against ‖α_t − α_final‖, mean over seeds.")
    return Section("Figure 4: training loss against distance to the final alphas", body, f4.issues)


def landscape_runs(res: Results) -> list[Path]:
    """Per space and group, the lowest seed among complete runs with a checkpoint."""
    runs = res.runs[res.runs["complete"] & res.runs["has_checkpoint"]]
    if runs.empty:
        raise AnalysisError("no complete run with checkpoint.pt in the selection")
    firsts = runs.sort_values("seed").groupby(["space", "group"], sort=False).head(1)
    return [Path(p) for p in firsts.sort_values(["space", "group_order", "group"])["run_dir"]]


def landscape_section(res: Results, args: argparse.Namespace) -> Section:
    from analysis import landscape  # imports torch: only when asked for

    found = [
        landscape.compute(run, grid=args.landscape_grid, batches=args.landscape_batches,
                          data_dir=args.data_dir, device=args.device)
        for run in landscape_runs(res)
    ]  # fmt: skip
    body = _figure(landscape.plot(found), (landscape.__doc__ or "").split("\n\n")[1].replace("\n", " "))
    return Section("Accuracy landscapes around the final alphas", body)


def settings_section(res: Results) -> Section:
    body = "<h3>Seeds behind every number</h3>" + export.html_table(settings.seed_table(res))
    diff = settings.differences(res)
    body += "<h3>Settings that differ between runs</h3>" + export.html_table(diff)
    shared = settings.common(res)
    items = "".join(f"<li><code>{html.escape(k)}</code> = {html.escape(v)}</li>" for k, v in shared.items())
    body += (
        f"<details><summary>Settings all {len(res.runs)} runs share ({len(shared)})</summary><ul>{items}</ul>"
    )
    body += "</details>"
    return Section("Run settings", body)


def _guarded(title: str, make: Callable[[], Section]) -> Section:
    try:
        return make()
    except AnalysisError as exc:
        return Section(title, f'<p class="na">Not available: {html.escape(str(exc))}</p>')


def build(res: Results, args: argparse.Namespace) -> tuple[str, list[Issue]]:
    sections = [
        _guarded("Figure 3", lambda: figure3_section(res, args.log)),
        _guarded("Table 4", lambda: table4_section(res)),
        _guarded("Test regret", lambda: regret_section(res)),
        _guarded("Figure 4", lambda: figure4_section(res)),
    ]
    if correlation.measured(res):
        sections.append(_guarded("Correlation", lambda: correlation_section(res)))
    if args.landscape:
        sections.append(_guarded("Accuracy landscapes", lambda: landscape_section(res, args)))
    sections.append(settings_section(res))
    machines = machine_lines(res.runs)
    if machines:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in machines)
        sections.append(Section("Machines", f'<ul class="warn">{items}</ul>'))
    found = issues.dedupe([*res.issues, *(i for s in sections for i in s.issues)])
    problems = issues.summary_lines(found, limit=50)
    body = "".join(f"<li>{html.escape(p)}</li>" for p in problems) or "<li>none</li>"
    sections.append(Section("Data problems", f'<ul class="warn">{body}</ul>'))
    title = f"One-shot NAS results — {benchmark_title(res.benchmark)}"
    head = (
        f"<h1>{html.escape(title)}</h1><p class='note'>{len(res.runs)} runs from "
        f"<code>{html.escape(str(res.root))}</code>; spaces {', '.join(map(str, res.spaces))}; "
        f"{len(res.groups())} optimizer group(s). Every number below is computed from the results files; "
        "n = number of runs (seeds) behind it.</p>"
    )
    toc = "".join(f"<li>{html.escape(s.title)}</li>" for s in sections)
    page = "".join(f"<section><h2>{html.escape(s.title)}</h2>{s.body}</section>" for s in sections)
    doc = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{head}<ol>{toc}</ol>{page}</body></html>\n"
    )
    return doc, found


def write(res: Results, out: Path, args: argparse.Namespace) -> list[Path]:
    doc, found = build(res, args)
    issues.report(found, out, "report")
    path = out / REPORT_HTML
    path.write_text(doc, encoding="utf-8")
    return [path]


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("analysis.report", __doc__)
    p.add_argument("--log", action="store_true", help="log-scale eigenvalue axis in Figure 3")
    p.add_argument(
        "--landscape", action="store_true", help="add accuracy landscapes (needs checkpoints + data)"
    )
    p.add_argument(
        "--landscape-grid", type=int, default=21, help="landscape points per axis (odd; default 21)"
    )
    p.add_argument(
        "--landscape-batches", type=int, default=4, help="validation batches per point (default 4)"
    )
    p.add_argument("--data-dir", type=Path, default=None, help="where bench.data put CIFAR-10 (nb101 runs)")
    p.add_argument("--device", default="auto", help="device for the landscapes: auto, cpu, cuda")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(lambda args, res: write(res, args.out, args), build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
