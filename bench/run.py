#!/usr/bin/env python
"""bnnas benchmark: one command, six rows, our numbers beside the anchors.

    python bench/run.py                      # every row on the best device here (CUDA if present, else CPU)
    python bench/run.py --rows 1,3           # pick rows
    python bench/run.py --quick              # small sizes, few repetitions: a smoke run
    python bench/run.py --device cuda        # GPU rows at the issue's sizes (bs 256 @ 224, detector @ 512)
    python bench/run.py --compile            # also torch.compile the models (rows 1, 2, 5)
    python bench/run.py --json out.json      # raw samples of every row

Method: warm-up, then interleaved timed repetitions (every contender once per repetition, in turn), median and
spread (IQR, min, max). Ratios are formed per repetition, on the same device in the same run; absolute times are
context only. Model rows use synthetic device-resident inputs; row 4 measures the loader alone. Rows 3 and 6 are CPU
work by definition. On CPU, rows 1/2/5 run at reduced sizes (printed), and CUDA-only parts say "skipped (no CUDA)".
See docs/benchmarks.md for recorded results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from util import RowResult, device_name, load_avg

ROWS = (1, 2, 3, 4, 5, 6)
META = {
    1: ("supernet step time, bn mode / all mode, same batch", "paper ~0.80; timm mbv2 H100 bf16 cl bs256 0.876",
        "<= 0.75"),
    2: ("supernet training img/s vs timm mobilenetv2_100, FLOPs-normalised",
        "timm H100 bf16 bs256: 6258 img/s eager, 7837 compiled", ">= 1.0x timm"),
    3: ("scoring + searching 1000 subnets (EA) and exact solver, CPU wall, spos-imagenet @ 470 MFLOPs",
        "paper 0.14 s for 1000 subnets", "<= 20 ms EA, <= 20 ms exact"),
    4: ("training data pipeline img/s vs what #2 consumes", "CPU decode 16 cores 2-3k img/s",
        "loader never the bottleneck on one GPU"),
    5: ("detector train step and inference img/s at 512x512, BNNAS-EffDet vs effdet efficientdet_d0",
        "measure in the same run", ">= 1.0x effdet d0; top-3 kernels named"),
    6: ("COCO bbox evaluation time, pycocotools vs faster-coco-eval", "measure in the same run",
        "identical 12 numbers, >= 3x faster"),
}


@dataclass
class Settings:
    compile: bool = False
    workers: int = 2
    jpeg_dir: str | None = None
    # rows 1-2
    sn_batch: int = 8
    sn_res: int = 112
    sn_paths: int = 2
    sn_per_rep: int = 1
    sn_warmup: int = 4  # >= 2 x paths: the first steps of every path build oneDNN/cuDNN plans
    reps_sn: int = 6
    # row 3
    search_warmup: int = 3
    reps_search: int = 30
    # row 4
    jpeg_images: int = 256
    loader_batch: int = 32
    loader_batches: int = 4
    reps_loader: int = 3
    # row 5
    det_batch: int = 2
    det_res: int = 512
    det_warmup: int = 1
    reps_det: int = 3
    # row 6
    coco_images: int = 500
    reps_coco: int = 3


def settings(device: torch.device, quick: bool, compile_: bool, workers: int | None) -> Settings:
    cores = os.cpu_count() or 1
    s = Settings(compile=compile_, workers=workers if workers is not None else min(16, cores))
    if device.type == "cuda":  # the sizes
        s.sn_batch, s.sn_res, s.sn_paths, s.sn_per_rep, s.sn_warmup, s.reps_sn = 256, 224, 4, 4, 8, 10
        s.jpeg_images, s.loader_batch, s.loader_batches, s.reps_loader = 512, 256, 6, 3
        s.det_batch, s.det_res, s.det_warmup, s.reps_det = 16, 512, 5, 10
        if quick:
            s.sn_batch, s.sn_paths, s.sn_per_rep, s.sn_warmup, s.reps_sn = 64, 2, 2, 2, 3
            s.jpeg_images, s.loader_batch, s.loader_batches, s.reps_loader = 128, 64, 2, 2
            s.det_batch, s.det_warmup, s.reps_det = 4, 2, 3
    elif quick:
        s.sn_batch, s.sn_res, s.sn_paths, s.sn_warmup, s.reps_sn = 4, 64, 2, 4, 3
        s.jpeg_images, s.loader_batch, s.loader_batches, s.reps_loader = 64, 16, 2, 2
        s.det_batch, s.det_res, s.det_warmup, s.reps_det = 1, 256, 1, 2
    if quick:
        s.search_warmup, s.reps_search = 1, 7
        s.coco_images, s.reps_coco = 100, 2
    return s


def skipped(row: int, why: str) -> RowResult:
    what, anchor, target = META[row]
    return RowResult(row, what, anchor, target, ours=why, met=None)


def run_rows(rows, device: torch.device, cfg: Settings, cuda_requested_missing: bool) -> list[RowResult]:
    devname = device_name(device)
    results: list[RowResult] = []
    sn = None  # rows 1, 2 (and 4's comparison) share one interleaved measurement

    def supernet():
        nonlocal sn
        if sn is None:
            import row_supernet

            sn = row_supernet.measure(cfg, device)
        return sn

    for row in rows:
        t0 = time.perf_counter()
        try:
            if cuda_requested_missing and row in (1, 2, 4, 5):
                r = skipped(row, "skipped (no CUDA)")
            elif row in (1, 2):
                import row_supernet

                r = (row_supernet.row1 if row == 1 else row_supernet.row2)(supernet(), cfg, device, devname)
                if device.type != "cuda":
                    r.details.append("GPU at the issue's sizes (bs 256 @ 224, bf16, channels_last): skipped (no CUDA)")
            elif row == 3:
                import row_search

                r = row_search.run(cfg)
                r.details.insert(0, device_name(torch.device("cpu")))
            elif row == 4:
                import row_loader

                consumed, note = None, ""
                if sn is not None or 2 in rows or 1 in rows:
                    m = supernet()
                    consumed = float(m["batch"] / float(torch.tensor(m["t"]["bn"]).median()))
                    note = f"row 2's bn-mode supernet step, batch {m['batch']} at {m['res']}px on {device.type}"
                r = row_loader.run(cfg, device, consumed, note)
            elif row == 5:
                import row_detector

                r = row_detector.run(cfg, device, devname)
                if device.type != "cuda":
                    r.details.append("GPU at 512x512, bs 16, bf16: skipped (no CUDA)")
            elif row == 6:
                import row_coco

                r = row_coco.run(cfg)
                r.details.insert(0, device_name(torch.device("cpu")))
            else:
                raise ValueError(f"no row {row}")
        except Exception as e:  # one broken row must not hide the others
            r = skipped(row, f"error: {type(e).__name__}: {e}")
            r.details.append(traceback.format_exc(limit=3).strip().splitlines()[-1])
        r.details.append(f"(row took {time.perf_counter() - t0:.0f} s)")
        results.append(r)
        print(f"[row {row} done in {time.perf_counter() - t0:.0f} s] {r.ours}", file=sys.stderr, flush=True)
    return results


def table(results: list[RowResult]) -> str:
    lines = ["| # | what | anchor | ours | target | met? |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.row} | {r.what} | {r.anchor} | {r.ours} | {r.target} | {r.verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import bnnas.cli.common as cli
    from bnnas.cli.bench import add_arguments

    ap = cli.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(ap)
    command = f"python bench/run.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip()
    return cli.main(ap, lambda args: run(args, command), argv)


def run(args: argparse.Namespace, command: str) -> int:
    from bnnas.errors import BNNASError

    given = [r.strip() for r in args.rows.split(",") if r.strip()]
    rows = [int(r) for r in given if r.isdigit() and int(r) in ROWS]
    if not given or len(rows) != len(given):
        bad = ", ".join(r for r in given if not (r.isdigit() and int(r) in ROWS)) or "(none)"
        raise BNNASError(f"unknown rows {bad}; rows are {', '.join(map(str, ROWS))}")
    has_cuda = torch.cuda.is_available()
    want = args.device if args.device != "auto" else ("cuda" if has_cuda else "cpu")
    missing = want == "cuda" and not has_cuda
    device = torch.device("cuda" if want == "cuda" and has_cuda else "cpu")
    cfg = settings(device, args.quick, args.compile, args.workers)
    cfg.jpeg_dir = args.jpeg_dir
    torch.manual_seed(0)
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] > 0.5 * cores if hasattr(os, "getloadavg") else False
    threads = args.threads or (1 if busy else cores)
    torch.set_num_threads(threads)

    header = [
        f"command: {command}",
        f"date:    {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"device:  {device_name(device)}" + ("  [--device cuda requested: no CUDA here]" if missing else ""),
        f"torch {torch.__version__}, python {platform.python_version()}, {'quick' if args.quick else 'full'} sizes, "
        f"{'torch.compile' if args.compile else 'eager'}",
        f"load at start: {load_avg()}; torch threads {threads}"
        + (" (machine busy: 1 thread)" if busy and not args.threads else ""),
    ]
    print("\n".join(header), flush=True)
    results = run_rows(rows, device, cfg, missing)
    print()
    print(table(results))
    print()
    for r in results:
        print(f"row {r.row} details:")
        for d in r.details:
            print(f"  {d}")
    print(f"\nload at end: {load_avg()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "settings": cfg.__dict__, "rows": [
            {"row": r.row, "ours": r.ours, "met": r.met, "details": r.details, "data": r.data} for r in results]},
            indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
