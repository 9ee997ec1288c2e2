"""Markdown reports for tickets and wikis: one .md file, its PNG figures in a folder beside it."""

from __future__ import annotations

from pathlib import Path

from tippingpoint.core.io import atomic_write_bytes
from tippingpoint.reports import document


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _block(b: document.Block, figures_dir: str) -> str:
    if isinstance(b, document.Heading):
        return "#" * b.level + " " + b.text
    if isinstance(b, document.Para):
        prefix = {
            document.Tone.NORMAL: "",
            document.Tone.NOTE: "> ",
            document.Tone.WARNING: "> **Warning:** ",
        }[b.tone]
        return prefix + b.text
    if isinstance(b, document.KeyValues):
        return "\n".join(f"- **{k}:** {v}" for k, v in b.items)
    if isinstance(b, document.Bullets):
        mark = "**Warning:** " if b.tone is document.Tone.WARNING else ""
        return "\n".join(f"- {mark}{i}" for i in b.items)
    if isinstance(b, document.TableBlock):
        head = "| " + " | ".join(_cell(h) for h in b.headers) + " |"
        sep = "|" + "|".join("---" for _ in b.headers) + "|"
        rows = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in b.rows]
        return "\n".join([f"*{b.caption}*", "", head, sep, *rows])
    if isinstance(b, document.FigureBlock):
        f = b.figure
        return f"![{f.title}]({figures_dir}/{f.id}.png)\n\n*{f.caption}*"
    raise TypeError(f"unknown block {type(b).__name__}")


def render_markdown(doc: document.Document, figures_dir: str) -> str:
    """The document as Markdown text, figures referenced as ``figures_dir/<id>.png``."""
    parts = [f"# {doc.title}", "", doc.subtitle, ""]
    for b in doc.blocks:
        parts.append(_block(b, figures_dir))
        parts.append("")
    return "\n".join(parts)


def write_markdown(doc: document.Document, out: Path) -> Path:
    """Write ``out`` (.md) and its PNG figures into ``<out stem>_figures/`` beside it."""
    from tippingpoint.reports.charts.png import write_png

    figures_dir = out.parent / f"{out.stem}_figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    for fig in doc.figures():
        write_png(fig, figures_dir / f"{fig.id}.png")
    atomic_write_bytes(out, render_markdown(doc, figures_dir.name).encode())
    return out
