"""The loss chart (Plotly) that the Train tab draws live and the Models tab draws from a shipped loss history."""
from __future__ import annotations

import plotly.graph_objects as go

COLORS = {"d": "#6366f1", "g": "#ec4899", "w": "#10b981"}
PLACEHOLDER = "The losses appear here while a run trains"


def loss_figure(history=(), total: float | None = None, wasserstein: bool | None = None, title: str = "Losses",
                placeholder: str = PLACEHOLDER) -> go.Figure:
    """Loss records ({"step", "d_loss", "g_loss"[, "wasserstein"]}) against the step, on an x axis from 0 to
    `total` (a live run's curves grow left to right; default: the last step). Hovering shows the step and every
    curve's value there. Without records and without `total`: an empty chart saying `placeholder`.
    `wasserstein` (default: whether the records hold that key) names the critic and adds the Wasserstein curve."""
    fig = go.Figure()
    steps = [h["step"] for h in history]
    if wasserstein is None:
        wasserstein = any("wasserstein" in h for h in history)
    if history or total is not None:
        value = "%{y:.4g}<extra></extra>"
        fig.add_scatter(x=steps, y=[h.get("d_loss") for h in history], mode="lines", line=dict(color=COLORS["d"]),
                        name="critic loss" if wasserstein else "discriminator loss",
                        hovertemplate=("critic" if wasserstein else "discriminator") + " loss " + value)
        fig.add_scatter(x=steps, y=[h.get("g_loss") for h in history], mode="lines", line=dict(color=COLORS["g"]),
                        name="generator loss", hovertemplate="generator loss " + value)
        if wasserstein:
            fig.add_scatter(x=steps, y=[h.get("wasserstein") for h in history], mode="lines",
                            line=dict(color=COLORS["w"], dash="dot"), name="Wasserstein estimate",
                            hovertemplate="Wasserstein estimate " + value)
    total = max(total if total is not None else (steps[-1] if steps else 100), 1)
    if not steps:
        fig.add_annotation(text=placeholder, showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(size=14, color="#6b7280"))
    fig.update_layout(template="plotly_white", height=380, margin=dict(l=56, r=16, t=64, b=48),
                      title=dict(text=title, x=0.01, y=0.97, font=dict(size=15)),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      hovermode="x unified",
                      xaxis=dict(title="step", range=[0, total], dtick=1 if total <= 10 else None,
                                 hoverformat=",.0f"),
                      yaxis=dict(title="loss", zeroline=False), uirevision="losses")
    return fig
