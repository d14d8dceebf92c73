"""The result of a ranking run: one row per candidate, sorted best first, and its output formats.

Every format names the method and its variant (``LogME (with intercept)``), so two numbers from
two variants are never mistaken for one another. JSON is strict: numbers are numbers and an
undefined one is ``null`` (files written before, with ``"inf"`` strings, still load).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Status = Literal["ok", "skipped"]

DISPLAY_NAMES = {"logme": "LogME", "hscore": "H-score", "shrinkage_hscore": "shrinkage H-score"}
_LAYERS = {"last": "last layer", "best": "best layer of each", "mean": "mean of all layers"}
_INTEGERS = (
    "best_layer",
    "dim",
    "num_samples",
    "num_parameters",
    "num_duplicates",
    "dropped_after",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


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
        score_se: standard error of ``score``, when estimated.
        interval: an interval at the ranking's ``interval_level`` (90% by default) for the
            score on all rows available (``Ranking.dataset["rows_available"]``): ``score -/+ t *
            score_se`` when every row was scored; when fewer were (``max_samples``), moved up
            along the score's drift with rows (see :func:`hf_logme.confidence.calibrated`).
        p_best: estimated probability that this candidate is the best one.
        tied: its interval overlaps the leader's (or lies above it), so the data cannot
            separate the two.
        note: a remark on how the score came about, e.g. "dropped after 512 rows".
        dropped_after: in a race (``rank_models(race=True)``), the rows after which this
            candidate was dropped (its score is at those rows); None for the others.
        method_errors: methods that could not score this candidate, with the reason.
        num_duplicates: duplicate feature rows seen (they bound what the data can tell apart).
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
    score_se: float | None = None
    interval: tuple[float, float] | None = None
    p_best: float | None = None
    tied: bool = False
    note: str | None = None
    method_errors: dict[str, str] = field(default_factory=dict)
    num_duplicates: int | None = None
    dropped_after: int | None = None

    @property
    def finite(self) -> bool:
        """Scored, with a finite primary score (what a plot can place)."""
        return self.status == "ok" and self.score is not None and math.isfinite(self.score)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: non-finite numbers become None, tuples lists, layer keys strings."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankingRow:
        """Read ``to_dict`` output (also older files: ``"inf"`` strings, missing fields)."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}  # keys of newer versions are ignored
        for name in ("score", "score_se", "p_best"):
            data[name] = _from_json_float(data.get(name))
        data["scores"] = {k: _from_json_float(v) for k, v in (data.get("scores") or {}).items()}
        if data.get("layer_scores") is not None:
            data["layer_scores"] = {
                int(k): _from_json_float(v) for k, v in data["layer_scores"].items()
            }
        if data.get("interval") is not None:
            low, high = (_from_json_float(v) for v in data["interval"])
            data["interval"] = (low, high)
        return cls(**data)


def _jsonable(value: Any) -> Any:
    """``value`` in strict JSON types: a non-finite float is None (JSON has no infinities)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _from_json_float(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def _sort_key(row: RankingRow) -> tuple[int, int, int, float]:
    """Scored rows by score, best first; in a race, the candidates dropped after fewer rows
    below those that raced on (their scores are on fewer rows); skipped rows last."""
    if row.status != "ok" or row.score is None:
        return (1, 0, 0, 0.0)
    score = float(row.score)
    dropped = row.dropped_after is not None
    rows = -row.dropped_after if dropped else 0
    return (0, int(dropped), rows, -score if not math.isnan(score) else math.inf)


def method_label(name: str, options: dict[str, Any] | None = None) -> str:
    """A method and its variant as a reader sees it, e.g. ``LogME (with intercept)``.

    >>> method_label("logme", {"intercept": False})
    'LogME (no intercept)'
    >>> method_label("knn", {"k": 5})
    'knn (k=5)'
    >>> method_label("logme", {"intercept": True, "prior": 2.0})
    'LogME (with intercept, small-sample prior 2)'
    """
    parts = []
    for key, value in (options or {}).items():
        if value is None:  # an option left at "none" (LogME's exact evidence: prior=None)
            continue
        if key == "intercept":
            parts.append("with intercept" if value else "no intercept")
        elif key == "prior":
            parts.append(f"small-sample prior {value:g}")
        elif isinstance(value, bool):
            parts.append(key if value else f"no {key}")
        else:
            parts.append(f"{key}={value}")
    label = DISPLAY_NAMES.get(name, name)
    return f"{label} ({', '.join(parts)})" if parts else label


def short_name(model: str) -> str:
    """The repo name of a Hub id, or the folder name of a local path (for plots and legends)."""
    return model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or model


def is_hub_id(model: str) -> bool:
    """``org/name`` (or ``name``) that is not a folder here: a Hub id."""
    return bool(_HUB_ID.match(model)) and not Path(model).expanduser().exists()


@dataclass
class Ranking:
    """Candidates sorted by score, best first; skipped candidates last, with their reasons.

    Attributes:
        rows: the candidates, sorted.
        methods: the estimators used and their options, e.g. ``{"logme": {"intercept": False}}``;
            the first is the primary method that orders the rows.
        dataset: what was scored (fingerprint, split, columns, task, number of samples).
        options: the extraction options of the run.
        interval_level: the coverage of the rows' ``interval`` (0.9: 90%).
    """

    rows: list[RankingRow]
    methods: dict[str, dict[str, Any]]
    dataset: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    interval_level: float = 0.9

    def __post_init__(self) -> None:
        self.rows = sorted(self.rows, key=_sort_key)

    @property
    def primary(self) -> str:
        return next(iter(self.methods))

    @property
    def method_labels(self) -> dict[str, str]:
        """Each method's name with its variant, e.g. ``{"logme": "LogME (with intercept)"}``."""
        return {name: method_label(name, options) for name, options in self.methods.items()}

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

    @property
    def confident(self) -> bool | None:
        """True when the best candidate is separated from every other (none is ``tied``), False
        when some are tied with it, None when the rows carry no intervals to tell."""
        scored = self.scored
        if not any(row.interval is not None for row in scored):
            return None
        return not any(row.tied for row in scored[1:])

    def __len__(self) -> int:
        return len(self.rows)

    # --- formats ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "methods": self.methods,
                "primary": self.primary,
                "method_labels": self.method_labels,
                "dataset": self.dataset,
                "options": self.options,
                "interval_level": self.interval_level,
                "confident": self.confident,
                "rows": [asdict(row) for row in self.rows],
            }
        )

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int = 2) -> str:
        """The ranking as strict JSON (``null`` for undefined numbers); also written to ``path``."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
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
        return cls(
            rows,
            data["methods"],
            data.get("dataset", {}),
            data.get("options", {}),
            data.get("interval_level", 0.9),
        )

    def caption(self) -> str:
        """One line on what was ranked: method and variant, dataset, split, rows, layers."""
        labels = list(self.method_labels.values())
        what = labels[0] + (f" (also: {', '.join(labels[1:])})" if labels[1:] else "")
        samples = {row.num_samples for row in self.scored if row.num_samples is not None}
        rows = samples.pop() if len(samples) == 1 else self.dataset.get("num_rows")
        where = [f"split {self.dataset['split']}"] if self.dataset.get("split") else []
        where += [f"{rows} rows"] if rows is not None else []
        where += [self.dataset["task"]] if self.dataset.get("task") else []
        text = f"{what} on {self.dataset.get('name', 'the dataset')}"
        text += f" ({', '.join(where)})" if where else ""
        layers = _LAYERS.get(self.options.get("layers"), self.options.get("layers"))
        extraction = [layers] if layers else []
        extraction += [f"{self.options['pooling']} pooling"] if self.options.get("pooling") else []
        return text + (f"; {', '.join(extraction)}" if extraction else "")

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The header and the rows as display strings, as every text format shows them."""
        methods, labels = list(self.methods), self.method_labels
        scored = self.scored
        show = {
            "se": any(row.score_se is not None for row in scored),
            "interval": any(row.interval is not None for row in scored),
            "p_best": any(row.p_best is not None for row in scored),
            "layer": any(row.best_layer is not None for row in self.rows),
            "dups": any(row.num_duplicates for row in self.rows),
        }
        level = f"{self.interval_level * 100:g}% interval"
        header = ["rank", "model", *(labels[m] for m in methods)]
        header += ["± SE"] * show["se"] + [level] * show["interval"] + ["P(best)"] * show["p_best"]
        header += ["layer"] * show["layer"]
        header += ["dim", "samples"] + ["duplicates"] * show["dups"]
        header += ["extract s", "score s", "params", "status"]
        body = []
        for rank, row in enumerate(self.rows, start=1):
            ok = row.status == "ok"
            cells = [str(rank) if ok else "-", row.model]
            cells += [_fmt_score(row.scores.get(m)) for m in methods]
            cells += [_fmt_score(row.score_se)] * show["se"]
            cells += [_fmt_interval(row.interval)] * show["interval"]
            cells += [_fmt_score(row.p_best, 2)] * show["p_best"]
            cells += [_fmt(row.best_layer)] * show["layer"]
            cells += [_fmt(row.dim), _fmt(row.num_samples)]
            cells += [_fmt(row.num_duplicates)] * show["dups"]
            cells += [
                _fmt_seconds(row.extract_s),
                _fmt_seconds(row.score_s),
                format_count(row.num_parameters),
                _status(row),
            ]
            body.append(cells)
        return header, body

    def to_markdown(self) -> str:
        """A Markdown summary to paste into a model card: what was ranked (method and variant,
        dataset, rows) above a table of scored rows best first, then skipped rows with reasons."""
        header, body = self.table()
        for cells in body:
            if is_hub_id(cells[1]):
                cells[1] = f"[{cells[1]}](https://huggingface.co/{cells[1]})"
        lines = [f"**Checkpoint ranking**: {self.caption()}.", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += [
            "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body
        ]
        if self.confident is not None:
            lines += ["", _confidence_sentence(self)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The table in a notebook, the caption above it; skipped rows greyed."""
        header, body = self.table()
        out = [
            '<table class="hf-logme-ranking">',
            f"<caption>{html.escape(self.caption())}</caption>",
        ]
        out.append(
            "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>"
        )
        out.append("<tbody>")
        for row, cells in zip(self.rows, body):
            style = "" if row.status == "ok" else ' style="color:#888"'
            out.append(
                f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            )
        out.append("</tbody></table>")
        if self.confident is not None:
            out.append(f"<p>{html.escape(_confidence_sentence(self))}</p>")
        return "\n".join(out)

    def __str__(self) -> str:
        header, body = self.table()
        widths = [
            max(len(h), *(len(r[i]) for r in body)) if body else len(h)
            for i, h in enumerate(header)
        ]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
        return "\n".join(lines)

    def to_pandas(self):
        """One DataFrame row per candidate (pandas comes with ``datasets``)."""
        import pandas as pd

        labels = self.method_labels
        records = []
        for row in self.rows:
            record = row.to_dict()
            record["method"] = labels[self.primary]
            record.update({f"score_{m}": record["scores"].get(m) for m in self.methods})
            records.append(record)
        return pd.DataFrame.from_records(records)

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The ranking as CSV, one row per candidate, the primary method's variant in the
        ``method`` column; also written to ``path`` when given."""
        frame = self.to_pandas()
        frame["interval_low"] = [None if i is None else i[0] for i in frame["interval"]]
        frame["interval_high"] = [None if i is None else i[1] for i in frame["interval"]]
        frame["method_errors"] = [
            "; ".join(f"{m}: {reason}" for m, reason in errors.items()) or None
            for errors in frame["method_errors"]
        ]
        frame = frame.astype({column: "Int64" for column in _INTEGERS})  # None stays empty, not 2.0
        text = frame.drop(columns=["scores", "layer_scores", "interval"]).to_csv(index=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON, CSV, Markdown or HTML, chosen by the file extension."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            self.to_json(path)
        elif suffix == ".csv":
            self.to_csv(path)
        elif suffix in (".md", ".markdown"):
            path.write_text(self.to_markdown() + "\n")
        elif suffix in (".html", ".htm"):
            path.write_text(self._repr_html_() + "\n")
        else:
            raise ValueError(
                f"Cannot save a ranking as {path.name!r}: use .json, .csv, .md or .html."
            )
        return path

    def plot(
        self,
        path: str | os.PathLike | None = None,
        *,
        ax: Axes | None = None,
        title: str | None = None,
    ) -> Figure:
        """The primary scores as points, best at the top, with interval bars where rows have
        them; rows that cannot be placed (skipped, non-finite) are listed in a note.

        Args:
            path: also save the figure there (PNG, SVG, PDF: from the extension).
            ax: draw on these axes; default a new ``matplotlib.figure.Figure`` (no pyplot state,
                the caller's backend untouched; Jupyter displays it when it is the cell's value).
            title: default the method, its variant and the dataset.

        Returns:
            The figure drawn on. Needs ``pip install 'hf-logme[plot]'``.
        """
        from .plotting import plot_ranking

        return plot_ranking(self, path, ax=ax, title=title)

    def plot_layers(
        self,
        path: str | os.PathLike | None = None,
        *,
        ax: Axes | None = None,
        title: str | None = None,
    ) -> Figure:
        """Primary score against hidden layer (0 = embeddings), one line per candidate, its best
        layer marked: needs a ranking run with ``layers="best"``. Arguments as in :meth:`plot`."""
        from .plotting import plot_layer_scores

        return plot_layer_scores(self, path, ax=ax, title=title)


def _status(row: RankingRow) -> str:
    if row.status != "ok":
        return f"skipped: {row.reason}"
    parts = ["ok (cached)" if row.cached else "ok"]
    parts += ["tied with the best"] if row.tied else []
    parts += [row.note] if row.note else []
    parts += [f"{method} not scored: {reason}" for method, reason in row.method_errors.items()]
    return "; ".join(parts)


def _confidence_sentence(ranking: Ranking) -> str:
    tied = [row.model for row in ranking.scored[1:] if row.tied]
    if not tied:
        return f"The best candidate is separated from the others at {ranking.interval_level:.0%}."
    return (
        f"Not separated at {ranking.interval_level:.0%}: {', '.join(tied)} "
        f"{'is' if len(tied) == 1 else 'are'} tied with the best candidate."
    )


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _fmt_score(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_interval(value: tuple[float, float] | None) -> str:
    return "-" if value is None else f"[{value[0]:.4f}, {value[1]:.4f}]"


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
