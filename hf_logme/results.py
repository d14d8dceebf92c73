"""The result of a ranking run: one row per candidate, sorted best first, and its output formats."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "skipped"]


@dataclass
class RankingRow:
    """One candidate checkpoint's outcome.

    Attributes:
        model: Hub id or local path, as given.
        status: "ok" when scored, "skipped" when it could not be (see ``reason``).
        score: the primary method's score (higher is better), None when skipped.
        scores: every method's score by name.
        revision: the commit the features came from, when known.
        best_layer: with ``layers="best"``, the hidden layer with the highest primary score
            (0 = embeddings); None otherwise.
        layer_scores: with ``layers="best"``, the primary score of every hidden layer.
        dim: feature dimension; num_samples: samples scored.
        extract_s, score_s: seconds spent extracting features and scoring them.
        num_parameters: model size when known.
        reason: why the candidate was skipped.
        cached: the features' statistics came from the cache.
        method_errors: why a method could not score this candidate, by method name (e.g. LEEP
            on a checkpoint without a classification head); the other methods' scores stay.
    """

    model: str
    status: Status = "ok"
    score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    revision: str | None = None
    best_layer: int | None = None
    layer_scores: dict[int, float] | None = None
    dim: int | None = None
    num_samples: int | None = None
    extract_s: float | None = None
    score_s: float | None = None
    num_parameters: int | None = None
    reason: str | None = None
    cached: bool = False
    method_errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["score"] = _json_float(self.score)
        row["scores"] = {k: _json_float(v) for k, v in self.scores.items()}
        if self.layer_scores is not None:
            row["layer_scores"] = {str(k): _json_float(v) for k, v in self.layer_scores.items()}
        return row

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankingRow:
        data = dict(data)
        data["score"] = _from_json_float(data.get("score"))
        data["scores"] = {k: _from_json_float(v) for k, v in data.get("scores", {}).items()}
        if data.get("layer_scores") is not None:
            data["layer_scores"] = {int(k): _from_json_float(v) for k, v in data["layer_scores"].items()}
        return cls(**data)


def _json_float(value: float | None) -> float | str | None:
    """JSON has no infinities: keep them readable as strings ("inf", "-inf", "nan")."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


def _from_json_float(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def _sort_key(row: RankingRow) -> tuple[int, float]:
    if row.status != "ok" or row.score is None:
        return (1, 0.0)
    score = float(row.score)
    return (0, -score if not math.isnan(score) else math.inf)


@dataclass
class Ranking:
    """Candidates sorted by score, best first; skipped candidates last, with their reasons.

    Attributes:
        rows: the candidates, sorted.
        methods: the estimators used and their options, e.g. ``{"logme": {"intercept": False}}``;
            the first is the primary method that orders the rows.
        dataset: what was scored (fingerprint, split, columns, task, number of samples).
        options: the extraction options of the run.
    """

    rows: list[RankingRow]
    methods: dict[str, dict[str, Any]]
    dataset: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = sorted(self.rows, key=_sort_key)

    @property
    def primary(self) -> str:
        return next(iter(self.methods))

    @property
    def scored(self) -> list[RankingRow]:
        return [row for row in self.rows if row.status == "ok"]

    @property
    def skipped(self) -> list[RankingRow]:
        return [row for row in self.rows if row.status != "ok"]

    @property
    def best(self) -> str | None:
        """The id of the best-scoring candidate, or None when nothing could be scored."""
        scored = self.scored
        return scored[0].model if scored else None

    def __len__(self) -> int:
        return len(self.rows)

    # --- formats ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": self.methods,
            "primary": self.primary,
            "dataset": self.dataset,
            "options": self.options,
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int = 2) -> str:
        """The ranking as JSON; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, default=str)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> Ranking:
        """Read a ranking written by ``to_json``."""
        path = Path(text_or_path)
        text = path.read_text() if path.suffix == ".json" and path.exists() else str(text_or_path)
        data = json.loads(text)
        rows = [RankingRow.from_dict(row) for row in data["rows"]]
        return cls(rows, data["methods"], data.get("dataset", {}), data.get("options", {}))

    def _table(self) -> tuple[list[str], list[list[str]]]:
        methods = list(self.methods)
        show_layer = any(row.best_layer is not None for row in self.rows)
        header = ["rank", "model", *methods]
        header += ["layer"] if show_layer else []
        header += ["dim", "samples", "extract s", "score s", "params", "status"]
        body = []
        for rank, row in enumerate(self.rows, start=1):
            ok = row.status == "ok"
            cells = [str(rank) if ok else "-", row.model]
            cells += [_fmt_score(row.scores.get(m)) for m in methods]
            cells += [_fmt(row.best_layer)] if show_layer else []
            cells += [
                _fmt(row.dim),
                _fmt(row.num_samples),
                _fmt_seconds(row.extract_s),
                _fmt_seconds(row.score_s),
                format_count(row.num_parameters),
                ("ok (cached)" if row.cached else "ok") if ok else f"skipped: {row.reason}",
            ]
            body.append(cells)
        return header, body

    def to_markdown(self) -> str:
        """A Markdown table: scored rows best first, then skipped rows with their reasons."""
        header, body = self._table()
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
        return "\n".join(lines)

    def __str__(self) -> str:
        header, body = self._table()
        widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
        return "\n".join(lines)

    def to_pandas(self):
        """One DataFrame row per candidate (pandas comes with ``datasets``)."""
        import pandas as pd

        records = []
        for row in self.rows:
            record = row.to_dict()
            record.update({f"score_{m}": row.scores.get(m) for m in self.methods})
            records.append(record)
        return pd.DataFrame.from_records(records)

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The ranking as CSV (one row per candidate); also written to ``path`` when given."""
        frame = self.to_pandas().drop(columns=["scores", "layer_scores"])
        text = frame.to_csv(index=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON, CSV or Markdown, chosen by the file extension."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            self.to_json(path)
        elif suffix == ".csv":
            self.to_csv(path)
        elif suffix in (".md", ".markdown"):
            path.write_text(self.to_markdown() + "\n")
        else:
            raise ValueError(f"Cannot save a ranking as {path.name!r}: use .json, .csv or .md.")
        return path

    def plot(self, path: str | os.PathLike, *, title: str | None = None) -> Path:
        """A horizontal bar chart of the primary scores as PNG (needs ``pip install hf-logme[plot]``)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError(
                "Ranking.plot needs matplotlib: pip install 'hf-logme[plot]'"
            ) from err
        scored = [row for row in self.scored if row.score is not None and math.isfinite(row.score)]
        if not scored:
            raise ValueError("No candidate has a finite score to plot.")
        names = [row.model for row in reversed(scored)]
        values = [row.score for row in reversed(scored)]
        # Bars start just left of the worst score, so longer always means better (LogME is
        # often negative, and bars from zero would make the best candidate the shortest).
        spread = (max(values) - min(values)) or abs(max(values)) or 1.0
        base = min(values) - 0.15 * spread
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(scored) + 1.5))
        bars = ax.barh(names, [v - base for v in values], left=base, color="#ff9d00")
        bars[-1].set_color("#2b6cb0")  # the best
        ax.bar_label(bars, labels=[f"{v:.4f}" for v in values], padding=3, fontsize=8)
        ax.set_xlim(base, max(values) + 0.25 * spread)
        ax.set_xlabel(f"{self.primary} (higher predicts better transfer)")
        ax.set_title(title or f"{self.primary} ranking on {self.dataset.get('name', 'the dataset')}")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_count(value: int | None) -> str:
    """``22.7M``-style counts (parameters, downloads) for tables; ``-`` when unknown."""
    if value is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)
