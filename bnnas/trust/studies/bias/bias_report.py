"""The bias study's report (:mod:`bnnas.trust.studies.bias.bias_study`): ``bias.md``, also printed by ``bnnas bias``."""

from __future__ import annotations


def bias_md(out: dict) -> str:
    """``bias.md``: each form's conv share and parameter-free picks per budget, and its mean score by op kind."""
    lines = [f"# Conv bias of the BN indicator ({out['data']}, {out['epochs']} BN-only epochs, "
             f"`{out['indicator']}`)", "",
             f"Conv share = share of MBConv picks among the layers that offer a parameter-free op (uniform random "
             f"picking: {100 * out['uniform_conv_share']:.0f}%).", "",
             "| budget MFLOPs | " + " | ".join(f"{f} conv share | {f} param-free picks" for f in out["forms"]) + " |",
             "|---|" + "---|---|" * len(out["forms"])]
    for i, b in enumerate(out["budgets_m"]):
        cells = []
        for f in out["forms"].values():
            r = f["picks"][i]
            cells += [f"{100 * r['conv_share_free_layers']:.0f}%", " ".join(r["picked_param_free"]) or "-"]
        lines.append(f"| {b:g} | " + " | ".join(cells) + " |")
    lines += ["", "Mean score by op kind on those layers:", ""]
    for form, f in out["forms"].items():
        lines.append(f"- {form}: " + ", ".join(f"{k} {v:.4f}" for k, v in f["mean_score_by_kind"].items()))
        if "retrained" in f:
            r = f["retrained"]
            lines.append(f"  - arch at {r['budget_m']:g} MFLOPs trained from scratch: {100 * r['acc']:.2f}% val top-1 "
                         f"({r['flops_m']:.2f} MFLOPs)")
    return "\n".join(lines) + "\n"
