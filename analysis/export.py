"""Tables as CSV (raw numbers), Markdown and LaTeX (formatted), with a title and notes saying what
the numbers are and how many runs they rest on."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}  # fmt: skip
_LATEX_SYMBOLS = {"±": r"$\pm$", "–": "--", "—": "---", "α": r"$\alpha$", "λ": r"$\lambda$", "‖": r"$\|$"}


def _text(shown: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text; a missing value is an empty cell (pandas' string dtype keeps it missing)."""
    return shown.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))


def markdown(shown: pd.DataFrame, title: str = "", notes: Sequence[str] = ()) -> str:
    """A GitHub-flavoured Markdown table (no `tabulate` dependency)."""
    cells = _text(shown).map(lambda s: s.replace("|", r"\|"))
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(map(str, shown.columns)) + " |")
    lines.append("| " + " | ".join("---" for _ in shown.columns) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX specials; symbols become math (λ_max -> $\\lambda_{\\max}$, ± -> $\\pm$)."""
    parts = str(text).split("λ_max")
    out = r"$\lambda_{\max}$".join("".join(_LATEX_ESCAPES.get(ch, ch) for ch in p) for p in parts)
    for sym, rep in _LATEX_SYMBOLS.items():
        out = out.replace(sym, rep)
    return out


def latex(shown: pd.DataFrame, caption: str = "", label: str = "", notes: Sequence[str] = ()) -> str:
    """A booktabs table environment; notes go below it as a small paragraph."""
    spec = "l" * len(shown.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(latex_escape(c) for c in shown.columns) + r" \\")
    lines.append(r"\midrule")
    for row in _text(shown).itertuples(index=False):
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(r"\par\footnotesize " + " ".join(latex_escape(n) for n in notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def html_table(shown: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in _text(shown).itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_table(
    raw: pd.DataFrame,
    shown: pd.DataFrame,
    out: Path,
    stem: str,
    *,
    title: str,
    notes: Sequence[str] = (),
) -> list[Path]:
    """CSV of the raw numbers; Markdown and LaTeX of the formatted ones, titled and annotated."""
    out = Path(out)
    paths = [out / f"{stem}.csv", out / f"{stem}.md", out / f"{stem}.tex"]
    raw.to_csv(paths[0], index=False, float_format="%.10g")
    paths[1].write_text(markdown(shown, title, notes))
    paths[2].write_text(latex(shown, title, f"tab:{stem}", notes))
    return paths
