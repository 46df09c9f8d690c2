"""One-pass grid layout for the report's figures, in place of matplotlib's constrained layout.

Why: constrained layout measures every Axes' decorations (ticks, labels, titles) twice per
execution, and ``savefig`` executes it inside an extra draw of every artist before the real
one: four tick layouts per Axes per PNG, most of a report's figure time.  `arrange` measures
once and fixes the positions, so saving draws once.

Contract: `arrange(fig, pad_in, gap_in) -> fig` for a figure whose visible Axes sit in the
cells of one subplot grid (``plt.subplots``; spans allowed) and whose layout engine is none.
It measures each visible Axes' tight bounding box (title, tick labels, axis labels, its own
legend) once, then places the grid so that, per column and per row, the widest decorations
fit: every column the same width, every row the same height (as ``plt.subplots`` makes
them), ``pad_in`` inches from the figure's edges and ``gap_in`` inches between neighbouring
decorations.  The suptitle (if any) is moved to the top edge and the space below it
reserved; every figure legend must be anchored to the bottom edge (``fig.legend(...,
loc="lower center")``): their heights are reserved there.  Tick labels are measured at the
pre-layout Axes size; the gaps leave room for a re-laid-out tick label a little wider.
If the decorations leave no room for the panels, the figure is left as it is.  Returns `fig`.
"""

from __future__ import annotations

PAD_IN = 0.06          # figure edge to the outermost decoration (constrained layout: 3 points = 0.042 in)
GAP_IN = 0.12          # between the decorations of neighbouring panels, and around the legend and suptitle


def arrange(fig, pad_in: float = PAD_IN, gap_in: float = GAP_IN):
    """Place `fig`'s Axes grid, suptitle and bottom legends (see the module docstring)."""
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_subplotspec() is not None]
    if not axes:
        return fig
    renderer = fig.canvas.get_renderer()
    dpi = fig.dpi
    width_in, height_in = fig.get_size_inches()
    nrows, ncols = axes[0].get_subplotspec().get_gridspec().get_geometry()
    left, right = [0.0] * ncols, [0.0] * ncols          # inches of decoration beside each column
    top, bottom = [0.0] * nrows, [0.0] * nrows          # and above/below each row
    for ax in axes:
        spec = ax.get_subplotspec()
        box, tight = ax.get_window_extent(renderer), ax.get_tightbbox(renderer)
        if tight is None:
            continue
        c0, c1 = spec.colspan.start, spec.colspan.stop - 1
        r0, r1 = spec.rowspan.start, spec.rowspan.stop - 1
        left[c0] = max(left[c0], (box.x0 - tight.x0) / dpi)
        right[c1] = max(right[c1], (tight.x1 - box.x1) / dpi)
        top[r0] = max(top[r0], (tight.y1 - box.y1) / dpi)
        bottom[r1] = max(bottom[r1], (box.y0 - tight.y0) / dpi)
    head = _place_suptitle(fig, renderer, pad_in) + gap_in
    foot = sum(leg.get_window_extent(renderer).height / dpi + gap_in for leg in fig.legends)
    col_w = (width_in - 2 * pad_in - sum(left) - sum(right) - gap_in * (ncols - 1)) / ncols
    row_h = (height_in - head - foot - pad_in - sum(top) - sum(bottom) - gap_in * (nrows - 1)) / nrows
    if col_w <= 0 or row_h <= 0:       # decorations larger than the figure: leave matplotlib's defaults
        return fig
    xs, x = [], pad_in
    for c in range(ncols):
        x += left[c]
        xs.append(x)
        x += col_w + right[c] + gap_in
    ys, y = [], height_in - head
    for r in range(nrows):
        y -= top[r] + row_h
        ys.append(y)
        y -= bottom[r] + gap_in
    for ax in axes:
        spec = ax.get_subplotspec()
        c0, c1 = spec.colspan.start, spec.colspan.stop - 1
        r0, r1 = spec.rowspan.start, spec.rowspan.stop - 1
        x0, x1 = xs[c0], xs[c1] + col_w
        y0, y1 = ys[r1], ys[r0] + row_h
        ax.set_position([x0 / width_in, y0 / height_in, (x1 - x0) / width_in, (y1 - y0) / height_in])
    return fig


def _place_suptitle(fig, renderer, pad_in: float) -> float:
    """Move the suptitle's top to `pad_in` below the figure's top; the inches it takes (0 if none)."""
    text = fig.get_suptitle()
    title = next((t for t in fig.texts if text and t.get_text() == text), None)
    if title is None:
        return pad_in
    height_in = fig.get_size_inches()[1]
    title.set_y(1 - pad_in / height_in)
    title.set_verticalalignment("top")
    return pad_in + title.get_window_extent(renderer).height / fig.dpi
