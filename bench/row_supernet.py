"""Rows 1 and 2: supernet training step, BN-only vs all parameters, and against timm's mobilenetv2_100.

All four contenders run interleaved in one loop on the same device-resident synthetic batch:

* ``bn``:  our :class:`SupernetTrainer` step in ``bn`` mode (the paper: only the indicator BNs train),
* ``all``: the same trainer in ``all`` mode (SPOS baseline),
* ``timm``: a plain training step of ``timm.create_model('mobilenetv2_100')`` (all parameters),
* ``timm_bn``: the same timm model with only its BN parameters trainable (context for the 0.876 anchor).

The supernet steps go through ``SupernetTrainer._step`` itself (scheduler, path sampling, autocast, backward, grad
clipping, fused optimizer, running metrics), over a fixed cycle of K uniformly drawn SPOS paths shared by ``bn`` and
``all``. FLOPs per image are counted with forward hooks at the benchmark resolution for both networks (the paper's MAC
convention), so row 2 compares img/s x MFLOPs/img.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from util import RowResult, Stat, count_macs, interleaved

ANCHOR_RATIO_TIMM = 0.876
ANCHOR_TIMM_IMGS = {"eager": 6258.0, "compiled": 7837.0}


class _Sized(Dataset):
    """A dataset that only has a length: the benchmark feeds the trainer's step directly."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # pragma: no cover - never iterated
        raise IndexError(i)


class CyclePaths:
    """Path sampler replacement: step s trains ``paths[s % K]`` and logs that path's MACs per image."""

    name = "cycle"

    def __init__(self, paths: list[np.ndarray], macs: list[float]):
        self.list, self.macs, self.log = paths, macs, []

    def paths(self, step: int) -> list[np.ndarray]:
        self.log.append(self.macs[step % len(self.list)])
        return [self.list[step % len(self.list)]]


def _compile_supernet_ops(net) -> None:
    """Compile every candidate op, the stem and the head in place (per module, so switching paths never recompiles
    the whole graph; each op compiles once, on the first step that uses it)."""
    net.stem.compile()
    net.head.compile()
    for layer in net.layers:
        for cand in layer.candidates:
            cand.compile()


def _path_macs(space, paths, res: int, device) -> list[float]:
    from bnnas.core.supernet import Supernet

    net = Supernet(space).eval()
    x = torch.zeros(1, 3, res, res)
    return [count_macs(net, lambda p=p: net(x, p.tolist())) for p in paths]


def _timm_model(device, channels_last: bool, bn_only: bool, compile_: bool):
    import timm

    from bnnas.training.engine import build_optimizer

    model = timm.create_model("mobilenetv2_100", pretrained=False, num_classes=1000).to(device).train()
    if channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if bn_only:
        for m in model.modules():
            for p in m.parameters(recurse=False):
                p.requires_grad_(isinstance(m, nn.modules.batchnorm._BatchNorm))
    opt = build_optimizer(model, 0.1, 0.9, 4e-5)  # fused SGD on GPU, foreach on CPU: as our trainer
    fwd = torch.compile(model) if compile_ else model
    return model, fwd, opt


def measure(cfg, device: torch.device) -> dict:
    """Run the interleaved measurement once; rows 1, 2 (and 4 for its comparison) read from the result."""
    from bnnas import get_space
    from bnnas.data import ClassificationData
    from bnnas.training.engine import autocast
    from bnnas.core.sampling import UniformSampler
    from bnnas.core.supernet import Supernet
    from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer

    B, res = cfg.sn_batch, cfg.sn_res
    space = get_space("spos-imagenet")
    paths = [UniformSampler(space, seed=0).paths(i)[0] for i in range(cfg.sn_paths)]
    macs = _path_macs(space, paths, res, device)
    torch.manual_seed(0)
    x = torch.randn(B, 3, res, res, device=device)
    y = torch.randint(0, 1000, (B,), device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        x = x.contiguous(memory_format=torch.channels_last)
    tmp = Path(tempfile.mkdtemp(prefix="bnnas-bench-"))
    logging.getLogger("timm").setLevel(logging.ERROR)  # the 1-epoch scheduler's "no effect" warning
    trainers = {}
    for mode in ("bn", "all"):
        tc = SupernetTrainConfig(epochs=1, batch_size=B, train_mode=mode, workers=0, amp=True, channels_last=True)
        data = ClassificationData("synthetic", _Sized(B), _Sized(B), 1000, res)
        tr = SupernetTrainer(Supernet(space), data, tc, tmp / mode, device, show_progress=False)
        tr.path_sampler = CyclePaths(paths, macs)
        tr.model.train()
        if cfg.compile:
            _compile_supernet_ops(tr.model)
        trainers[mode] = tr

    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    timm_models = {k: _timm_model(device, True, k == "timm_bn", cfg.compile) for k in ("timm", "timm_bn")}
    timm_macs = count_macs(timm_models["timm"][0], lambda: timm_models["timm"][0].eval()(torch.zeros(1, 3, res, res,
                                                                                                      device=device)))
    for model, _, _ in timm_models.values():
        model.train()

    def timm_step(key):
        model, fwd, opt = timm_models[key]
        opt.zero_grad(set_to_none=True)
        with autocast(device, True):
            out = fwd(x)
        crit(out.float(), y).backward()
        opt.step()

    fns = {
        "bn": lambda: trainers["bn"]._step(x, y),
        "all": lambda: trainers["all"]._step(x, y),
        "timm": lambda: timm_step("timm"),
        "timm_bn": lambda: timm_step("timm_bn"),
    }
    per_rep = cfg.sn_per_rep
    t = interleaved(fns, cfg.sn_warmup, cfg.reps_sn, device, per_rep=per_rep)
    log = np.asarray(trainers["bn"].path_sampler.log[cfg.sn_warmup:]).reshape(cfg.reps_sn, per_rep)  # warm-up: 1 step
    macs_rep = log.mean(1)  # MACs per image of the paths each repetition trained
    return {"t": t, "macs_rep": macs_rep, "timm_macs": timm_macs, "batch": B, "res": res, "paths": [p.tolist() for p in paths],
            "path_mflops": [m / 1e6 for m in macs], "compile": cfg.compile}


def row1(m: dict, cfg, device, devname: str) -> RowResult:
    t = m["t"]
    ratio = Stat(t["bn"] / t["all"])
    timm_ratio = Stat(t["timm_bn"] / t["timm"])
    r = RowResult(1, "supernet step time, bn mode / all mode, same batch",
                  f"paper ~0.80; timm mbv2 H100 bf16 cl bs256 {ANCHOR_RATIO_TIMM}", "<= 0.75")
    r.ours = f"{ratio.median:.3f} (IQR {ratio.iqr()[0]:.3f}-{ratio.iqr()[1]:.3f}); timm mbv2 bn/all {timm_ratio.median:.3f}"
    r.met = ratio.median <= 0.75
    prec = "bf16 autocast, channels_last" if device.type == "cuda" else "fp32"
    r.details += [
        f"{devname}; batch {m['batch']} at {m['res']}px, {prec}{', torch.compile per op' if m['compile'] else ', eager'}; "
        f"{len(m['paths'])} SPOS paths cycled ({', '.join(f'{v:.0f}' for v in m['path_mflops'])} MFLOPs/img at this res)",
        f"step time bn  {Stat(t['bn']).fmt(1, 1e3, ' ms')}",
        f"step time all {Stat(t['all']).fmt(1, 1e3, ' ms')}",
        f"timm mobilenetv2_100 step: all {Stat(t['timm']).fmt(1, 1e3, ' ms')}; BN-only {Stat(t['timm_bn']).fmt(1, 1e3, ' ms')}",
    ]
    r.data = {"ratio": ratio.values.tolist(), "timm_ratio": timm_ratio.values.tolist(),
              **{f"t_{k}": v.tolist() for k, v in t.items()}}
    return r


def row2(m: dict, cfg, device, devname: str) -> RowResult:
    t, B = m["t"], m["batch"]
    ours_ips = B / t["bn"]
    timm_ips = B / t["timm"]
    norm = Stat((ours_ips * m["macs_rep"]) / (timm_ips * m["timm_macs"]))
    key = "compiled" if m["compile"] else "eager"
    r = RowResult(2, "supernet training img/s vs timm mobilenetv2_100 (same device/batch/precision), FLOPs-normalised",
                  f"timm H100 bf16 bs256: {ANCHOR_TIMM_IMGS['eager']:.0f} img/s eager, "
                  f"{ANCHOR_TIMM_IMGS['compiled']:.0f} compiled", ">= 1.0x timm (img/s x MFLOPs/img)")
    r.ours = (f"{norm.median:.2f}x (IQR {norm.iqr()[0]:.2f}-{norm.iqr()[1]:.2f}); timm {np.median(timm_ips):.0f} img/s "
              f"({key})")
    r.met = norm.median >= 1.0
    r.details += [
        f"{devname}; batch {B} at {m['res']}px ({key})",
        f"supernet bn mode {Stat(ours_ips).fmt(1, 1, ' img/s')} at {np.mean(m['macs_rep']) / 1e6:.0f} MFLOPs/img "
        f"= {np.median(ours_ips * m['macs_rep']) / 1e9:.1f} GMAC/s",
        f"supernet all mode {Stat(B / t['all']).fmt(1, 1, ' img/s')}",
        f"timm mobilenetv2_100 {Stat(timm_ips).fmt(1, 1, ' img/s')} at {m['timm_macs'] / 1e6:.0f} MFLOPs/img "
        f"= {np.median(timm_ips) * m['timm_macs'] / 1e9:.1f} GMAC/s",
    ]
    r.data = {"norm_ratio": norm.values.tolist(), "ours_ips": ours_ips.tolist(), "timm_ips": timm_ips.tolist(),
              "ours_mflops": (m["macs_rep"] / 1e6).tolist(), "timm_mflops": m["timm_macs"] / 1e6}
    return r
