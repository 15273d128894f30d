"""The scorecard's chart (reports/scorecard.png): field accuracy per candidate, from summarize()'s dict."""

from __future__ import annotations

from reports.scoring import METRICS, SHORT


def render_png(summary: dict) -> bytes:
    """Bar chart of field accuracy per candidate (one panel per split), Wilson intervals as error bars."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    splits = list(summary["accuracy"]) or ["(none)"]
    fig = Figure(figsize=(10, 3.6 * len(splits)), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, split in zip(fig.subplots(len(splits), 1, squeeze=False)[:, 0], splits):
        by_cand = summary["accuracy"].get(split, {})
        width = 0.8 / max(1, len(by_cand))
        for i, (cand, tallies) in enumerate(by_cand.items()):
            xs = [j + (i - (len(by_cand) - 1) / 2) * width for j in range(len(METRICS))]
            rates = [tallies[m]["rate"] or 0.0 for m in METRICS]
            errs = [[max(0.0, r - tallies[m]["low"]) for r, m in zip(rates, METRICS)],
                    [max(0.0, tallies[m]["high"] - r) for r, m in zip(rates, METRICS)]]
            ax.bar(xs, rates, width, yerr=errs, capsize=2, label=cand)
        ax.set_xticks(range(len(METRICS)), [SHORT.get(m, m) for m in METRICS])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy")
        ax.set_title(f"split: {split} (error bars: 95% Wilson interval)")
        if by_cand:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
