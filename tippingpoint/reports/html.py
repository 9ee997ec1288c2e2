"""One self-contained HTML file: inline CSS and inline SVG, no scripts, fonts or network."""

from __future__ import annotations

from html import escape

from tippingpoint.reports.charts.svg import figure_svg
from tippingpoint.reports.document import (
    Block,
    Bullets,
    Document,
    FigureBlock,
    Heading,
    KeyValues,
    Para,
    TableBlock,
    Tone,
)

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
  color: #1a1a1a; background: #fafafa; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
header { border-bottom: 3px solid #0072B2; margin-bottom: 8px; }
h1 { margin: 8px 0 4px; font-size: 1.7rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { margin-top: 1.4rem; }
nav a { margin-right: 12px; white-space: nowrap; }
.subtitle { color: #555; margin: 0 0 12px; }
.note { color: #444; background: #eef4fa; border-left: 4px solid #0072B2; padding: 6px 10px; }
.warning { background: #fff4e5; border-left: 4px solid #D55E00; padding: 6px 10px; }
ul.warning, ul.note { padding-left: 28px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: 0.9rem; background: #fff; }
caption { text-align: left; color: #444; padding: 4px 0; caption-side: top; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
figure { margin: 12px 0 24px; background: #fff; border: 1px solid #e3e3e3; padding: 8px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: #444; font-size: 0.9rem; margin-top: 6px; }
@media (max-width: 600px) {
  main { padding: 8px; }
  dl { grid-template-columns: 1fr; }
  dt { margin-top: 6px; }
  h1 { font-size: 1.35rem; }
  figure { overflow-x: auto; }
  figure svg { min-width: 540px; }
}
"""


def _block(b: Block) -> str:
    if isinstance(b, Heading):
        tag = f"h{min(max(b.level, 1), 6)}"
        return f'<{tag} id="{escape(b.anchor)}">{escape(b.text)}</{tag}>'
    if isinstance(b, Para):
        cls = "" if b.tone is Tone.NORMAL else f' class="{b.tone.value}"'
        return f"<p{cls}>{escape(b.text)}</p>"
    if isinstance(b, KeyValues):
        items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in b.items)
        return f"<dl>{items}</dl>"
    if isinstance(b, Bullets):
        cls = "" if b.tone is Tone.NORMAL else f' class="{b.tone.value}"'
        items = "".join(f"<li>{escape(i)}</li>" for i in b.items)
        return f"<ul{cls}>{items}</ul>"
    if isinstance(b, TableBlock):
        head = "".join(f"<th>{escape(h)}</th>" for h in b.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in b.rows
        )
        return (
            f'<div class="table-wrap"><table><caption>{escape(b.caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )
    if isinstance(b, FigureBlock):
        f = b.figure
        return (
            f'<figure id="fig-{escape(f.id)}">{figure_svg(f)}'
            f"<figcaption>{escape(f.caption)}</figcaption></figure>"
        )
    raise TypeError(f"unknown block {type(b).__name__}")


def render_html(doc: Document) -> str:
    """The whole document as one HTML page."""
    nav = " ".join(
        f'<a href="#{escape(b.anchor)}">{escape(b.text)}</a>'
        for b in doc.blocks
        if isinstance(b, Heading) and b.level == 2
    )
    body = "\n".join(_block(b) for b in doc.blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(doc.title)}</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{CSS}</style></head><body><main>"
        f"<header><h1>{escape(doc.title)}</h1>"
        f'<p class="subtitle">{escape(doc.subtitle)}</p><nav>{nav}</nav></header>\n'
        f"{body}\n</main></body></html>\n"
    )
