"""One benchmark result, and the Markdown table they make."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """Ours against the best that could be done, both measured in the same run."""

    benchmark: str
    dialect: str
    ours: str
    ours_seconds: float
    baseline: str
    baseline_seconds: float | None
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> str:
        if self.baseline_seconds is None:
            return "—"
        return f"{self.ours_seconds / self.baseline_seconds:.2f}x"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| benchmark | dialect | ours | baseline | ratio | target | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        baseline = (
            f"{row.baseline}: {_ms(row.baseline_seconds)}"
            if row.baseline_seconds is not None
            else "—"
        )
        lines.append(
            f"| {row.benchmark} | {row.dialect} | {row.ours}: {_ms(row.ours_seconds)} | "
            f"{baseline} | {row.ratio} | {row.target} | {row.note} |"
        )
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"
