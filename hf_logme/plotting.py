"""Figures of a :class:`~hf_logme.results.Ranking`: scores as points, and scores by layer.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot: the caller's
backend and pyplot's list of open figures are left alone, and a figure nobody keeps is freed.
"""

from __future__ import annotations

import functools
import io
import math
import os
from typing import TYPE_CHECKING, Any

from .results import short_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .results import Ranking

BEST, TIED, OTHER = "#2b6cb0", "#2b6cb0", "#ff9d00"


def _figure(ax: Axes | None, height: float) -> tuple[Figure, Axes]:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("Ranking plots need matplotlib: pip install 'hf-logme[plot]'") from err
    if ax is not None:
        return ax.figure, ax

    figure = Figure(figsize=(8, height), layout="constrained")
    # Jupyter shows it as PNG by itself: without pyplot, IPython has no formatter for figures
    # until `%matplotlib inline` or a pyplot import registers one. An attribute, not a subclass:
    # libraries that take figures (Gradio's Plot) recognise them by their matplotlib class.
    figure._repr_png_ = functools.partial(_png, figure)
    return figure, figure.add_subplot()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def display_names(models: list[str]) -> dict[str, str]:
    """Short names (repo or folder name); the full id where two short names would collide."""
    short = [short_name(model) for model in models]
    return {m: s if short.count(s) == 1 else m for m, s in zip(models, short)}


def plot_ranking(
    ranking: Ranking, path: str | os.PathLike | None, *, ax: Axes | None, title: str | None
) -> Figure:
    """See :meth:`Ranking.plot`."""
    placed = [row for row in ranking.rows if row.finite]
    if not placed:
        raise ValueError(
            "No candidate has a finite score to plot: "
            + "; ".join(f"{row.model}: {_why_not_shown(row)}" for row in ranking.rows)
        )
    figure, ax = _figure(ax, 0.45 * len(placed) + 1.8)
    names = display_names([row.model for row in ranking.rows])
    label = ranking.method_labels[ranking.primary]
    for position, row in enumerate(reversed(placed)):  # the best at the top
        best = row is placed[0]
        color = BEST if best else TIED if row.tied else OTHER
        face = color if best or not row.tied else "white"
        if row.interval is not None:
            low, high = row.interval  # for the score on all rows: it may not contain the point
            ax.errorbar(
                0.5 * (low + high),
                position,
                xerr=0.5 * (high - low),
                fmt="none",
                ecolor=color,
                elinewidth=1.5,
                capsize=4,
                zorder=2,
            )
        ax.plot(row.score, position, "o", color=color, markerfacecolor=face, markersize=8, zorder=3)
        ax.annotate(
            f"{row.score:.4f}",
            (row.score, position),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(placed)), [names[row.model] for row in reversed(placed)])
    ax.set_ylim(-0.6, len(placed) - 0.4)
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)
    level = (
        f"; bars: {ranking.interval_level:.0%} intervals" if any(r.interval for r in placed) else ""
    )
    ax.set_xlabel(f"{label} (higher predicts better transfer{level})")
    ax.set_title(title or f"{label} on {ranking.dataset.get('name', 'the dataset')}")
    if any(row.tied for row in placed):
        from matplotlib.lines import Line2D

        marks = [("best", BEST), ("tied with the best", "white"), ("others", OTHER)]
        handles = [
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                color=BEST if face == "white" else face,
                markerfacecolor=face,
                label=text,
            )
            for text, face in marks
        ]
        ax.legend(handles=handles, fontsize=8, loc="lower right")
    hidden = [row for row in ranking.rows if not row.finite]
    if hidden:
        note = "Not shown: " + "; ".join(f"{names[r.model]} ({_why_not_shown(r)})" for r in hidden)
        ax.annotate(
            note,
            (0, 0),
            xycoords="axes fraction",
            xytext=(0, -36),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color="#555",
            wrap=True,
        )
    return _saved(figure, path)


def plot_layer_scores(
    ranking: Ranking, path: str | os.PathLike | None, *, ax: Axes | None, title: str | None
) -> Figure:
    """See :meth:`Ranking.plot_layers`."""
    rows = [row for row in ranking.scored if row.layer_scores]
    if not rows:
        raise ValueError(
            "No candidate has per-layer scores: rank with layers='best' "
            "(hf-logme rank --layers best)."
        )
    figure, ax = _figure(ax, 4.5)
    names = display_names([row.model for row in ranking.rows])
    label = ranking.method_labels[ranking.primary]
    for row in rows:
        layers = sorted(
            k for k, v in row.layer_scores.items() if v is not None and math.isfinite(v)
        )
        values = [row.layer_scores[k] for k in layers]
        (line,) = ax.plot(layers, values, "o-", markersize=4, label=names[row.model])
        if row.best_layer in row.layer_scores:
            ax.plot(
                row.best_layer,
                row.layer_scores[row.best_layer],
                "*",
                color=line.get_color(),
                markersize=14,
                zorder=3,
            )
    ax.set_xlabel("hidden layer (0 = embeddings; star: each candidate's best)")
    ax.set_ylabel(label)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{label} by layer on {ranking.dataset.get('name', 'the dataset')}")
    return _saved(figure, path)


def _why_not_shown(row: Any) -> str:
    if row.status != "ok":
        return f"skipped: {row.reason}"
    return "no score" if row.score is None else f"score {row.score}"


def _saved(figure: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    return figure
