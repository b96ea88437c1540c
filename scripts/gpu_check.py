#!/usr/bin/env python
"""Check a machine with a CUDA GPU in one command: every CUDA path of bnnas runs once, with its numbers.

    scripts/gpu_check.sh OUT_DIR            # on a new GPU machine, first (<= 5 min on one GPU)
    scripts/gpu_check.sh --smoke OUT_DIR    # the same steps on the CPU at toy sizes (CI runs it)

Each step runs the project's own entry point in a subprocess with a time limit (output in OUT_DIR/logs/STEP.log):

  device     versions (torch may not be the pinned one), the GPUs, a bf16 conv + matmul and torchvision's NMS on them
  rows-1-2   bench/run.py rows 1-2: BN-only and all-parameter supernet steps (bf16 autocast, channels_last) and the
             supernet's throughput against timm's mobilenetv2_100
  row-4      bench/run.py row 4: the training data loader, with JPEG decoding on the GPU (nvJPEG)
  retrain    tools/retrain.py for 100 steps (EMA, bf16) on the built-in digits
  torchrun   torchrun, one process per GPU (NCCL), tools/search.py for 2 supernet steps, then the search
  detector   tools/det.py train (mim train) of configs/bnnas_effdet_demo.py for 20 iterations on the built-in COCO
             digits, then validation with NMS on the GPU
  row-5      bench/run.py row 5: the detector's train step and inference against effdet's efficientdet_d0

OUT_DIR/gpu_check.json is rewritten after every step, so a run stopped by a time-out keeps what ran; a table closes
the output, and the exit status is 2 if any step failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
# bench/run.py settings the smoke run uses: the CPU, quick sizes, one thread and one loader worker (CI machines are
# small and shared)
SMOKE_BENCH = ["--device", "cpu", "--quick", "--threads", "1", "--workers", "1"]
PINNED = ("torch", "torchvision", "timm", "numpy", "mmcv", "mmengine", "mmdet", "pycocotools", "effdet")


@dataclass(frozen=True)
class Sizes:
    """What one mode runs: the GPU check, or the same steps on the CPU at toy sizes."""

    device: str
    bench: tuple[str, ...]  # bench/run.py flags
    retrain_images: int  # per epoch, 2 epochs
    retrain_batch: int
    retrain_input: int
    torchrun_procs: int
    det_iters: int
    det_batch: int
    det_val: int
    budget: float  # seconds for all steps together
    limits: dict[str, float]  # seconds per step


def sizes(smoke: bool, gpus: int) -> Sizes:
    limits = {"device": 60, "rows-1-2": 150, "row-4": 120, "retrain": 120, "torchrun": 120, "detector": 150,
              "row-5": 150}
    if smoke:
        return Sizes("cpu", tuple(SMOKE_BENCH), 160, 32, 32, 2, 4, 2, 4, 600, limits)
    return Sizes("cuda", ("--device", "cuda"), 1400, 28, 224, max(1, gpus), 20, 8, 50, 300, limits)


@dataclass
class StepResult:
    name: str
    what: str
    ok: bool | None = None  # None: not run
    seconds: float = 0.0
    result: str = ""
    commands: list[str] = field(default_factory=list)
    log: str = ""


@dataclass
class Step:
    name: str
    what: str
    commands: list[list[str]]
    summarize: Callable[[], str]  # the result cell, read from the step's outputs; raises if they are not there


# ------------------------------------------------------------------------------------------------ the device probe
def versions() -> dict[str, str]:
    """Installed versions of what bnnas runs on, and of the GPU stack torch was built with."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    out = {"python": platform.python_version()}
    for name in PINNED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["torch cuda"] = str(torch.version.cuda)
    out["cudnn"] = str(torch.backends.cudnn.version())
    if torch.cuda.is_available() and torch.distributed.is_nccl_available():
        out["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    try:
        from mmcv.ops import get_compiling_cuda_version

        out["mmcv ops cuda"] = get_compiling_cuda_version()  # 'not available': built for the CPU only
    except ImportError as e:
        out["mmcv ops cuda"] = f"mmcv.ops not importable: {e}"
    return out


def pinned_differences(found: dict[str, str]) -> list[str]:
    """'name found (pinned X)' for every package whose installed version is not constraints.txt's."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "constraints.txt").read_text(), re.M))
    return [f"{k} {found[k]} (pinned {pins[k]})" for k in PINNED
            if k in pins and found.get(k) != pins[k] and found.get(k, "").split("+")[0] != pins[k]]


def probe(device: str) -> dict:
    """Versions and the device, after a bf16 conv + matmul under autocast and torchvision's NMS ran on it."""
    import torch
    import torchvision

    info: dict = {"versions": versions(), "device": device}
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device visible to torch (run with --smoke for the CPU check)")
        info["gpus"] = [{"name": torch.cuda.get_device_name(i),
                         "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
                         "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                        for i in range(torch.cuda.device_count())]
        smi = shutil.which("nvidia-smi")
        smi = smi and subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True).stdout.strip()
        info["driver"] = smi.splitlines()[0] if smi else "?"
    dev = torch.device(device)
    x = torch.randn(8, 16, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(16, 32, 3, padding=1).to(dev, memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        y = conv(x).flatten(1) @ torch.randn(32 * 32 * 32, 10, device=dev)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float, device=dev)
    keep = torchvision.ops.batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=dev),
                                       torch.zeros(3, dtype=torch.long, device=dev), 0.5)
    assert keep.tolist() == [0, 2], keep
    return info


# ------------------------------------------------------------------------------------------------ the steps
def _bench_summary(path: Path, rows: tuple[int, ...], gpu: bool) -> str:
    doc = json.loads(path.read_text())
    got = {r["row"]: r for r in doc["rows"]}
    cells = []
    for row in rows:
        ours = got[row]["ours"]
        if ours.startswith(("error", "skipped")) or (gpu and "skipped (no CUDA)" in ours):
            raise RuntimeError(f"row {row}: {ours}")
        met = {True: "met", False: "NOT met", None: "n/a"}[got[row]["met"]]
        cells.append(f"row {row}: {ours} [{met}]")
    return "; ".join(cells)


def _retrain_summary(work: Path, steps: int) -> str:
    from bnnas.outputs.checkpoint import load_checkpoint

    done = load_checkpoint(work / "last.pth", kind="subnet")["global_step"]
    if done != steps:
        raise RuntimeError(f"trained {done} of {steps} steps")
    s = json.loads((work / "metrics.json").read_text())["summary"]
    return (f"{steps} steps ({s['epochs']} epochs, batch {s['global_batch']}, EMA) at {s['input_size']} px; "
            f"val top-1 {100 * s['final_top1']:.1f}%; {s['seconds']:.0f} s")


def _torchrun_summary(work: Path, procs: int, device: str) -> str:
    import torch

    ckpt = torch.load(work / "supernet.pth", map_location="cpu", weights_only=False)
    arch = json.loads((work / "arch.json").read_text())
    backend = "nccl" if device == "cuda" and procs > 1 else ("gloo" if procs > 1 else "none (1 process)")
    if ckpt["world_size"] != procs:
        raise RuntimeError(f"the run trained with {ckpt['world_size']} processes, not {procs}")
    return (f"{procs} process(es), backend {backend}: {ckpt['global_step']} steps of global batch "
            f"{ckpt['config']['batch_size'] * procs}; arch written ({arch['flops_m']:.2f} MFLOPs)")


def _detector_summary(work: Path, iters: int, val: int) -> str:
    scalars = sorted(work.glob("*/vis_data/scalars.json"))
    if not scalars:
        raise RuntimeError(f"no mmengine scalars.json under {work}")
    lines = [json.loads(l) for l in scalars[-1].read_text().splitlines() if l.strip()]
    trained = max((l["iter"] for l in lines if "loss" in l), default=0)
    metric = [l for l in lines if "coco/bbox_mAP" in l]
    if trained != iters or not metric:
        raise RuntimeError(f"trained {trained} of {iters} iterations; validation {'ran' if metric else 'missing'}")
    return (f"{iters} iterations, last loss {[l for l in lines if 'loss' in l][-1]['loss']:.3f}; validation on {val} "
            f"images, bbox mAP {metric[-1]['coco/bbox_mAP']:.3f} (NMS: torchvision)")


def build_steps(out: Path, sz: Sizes, py: str) -> list[Step]:
    """The steps in order; commands run in the checkout with ``py``."""
    from bnnas.core.arch import Arch, save_arch
    from bnnas.core.space import get_space
    from bnnas.data.coco_synth import SynthConfig, make_coco_demo

    gpu = sz.device == "cuda"
    bench = [py, "bench/run.py", *sz.bench]
    steps = [Step("device", "versions; bf16 conv + matmul, torchvision NMS on the device",
                  [[py, "scripts/gpu_check.py", "--probe", str(out / "device.json"), "--device", sz.device]],
                  lambda: _device_summary(out / "device.json"))]
    steps.append(Step("rows-1-2", "supernet BN-only / all steps (bf16, channels_last); img/s vs timm",
                      [[*bench, "--rows", "1,2", "--json", str(out / "bench_rows_1_2.json")]],
                      lambda: _bench_summary(out / "bench_rows_1_2.json", (1, 2), gpu)))
    steps.append(Step("row-4", "training data loader, JPEG decoding on the device",
                      [[*bench, "--rows", "4", "--json", str(out / "bench_row_4.json")]],
                      lambda: _bench_summary(out / "bench_row_4.json", (4,), gpu)))

    retrain, retrain_steps = out / "retrain", 2 * (sz.retrain_images // sz.retrain_batch)
    steps.append(Step("retrain", f"tools/retrain.py, {retrain_steps} steps",
                      [[py, "tools/retrain.py", "--arch", "bnnas-spos", "--data", "digits", "--limit-train",
                        str(sz.retrain_images), "--input-size", str(sz.retrain_input), "--epochs", "2",
                        "--batch-size", str(sz.retrain_batch), "--ema", "--device", sz.device, "--work-dir",
                        str(retrain), "--quiet"]],
                      lambda: _retrain_summary(retrain, retrain_steps)))

    search = out / "torchrun"
    per_proc = 32
    steps.append(Step("torchrun", "torchrun, one process per GPU, tools/search.py: 2 steps + search",
                      [[py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(sz.torchrun_procs),
                        "tools/search.py", "--data", "digits", "--epochs", "1", "--batch-size", str(per_proc),
                        "--limit-train", str(2 * per_proc * sz.torchrun_procs), "--search", "exact",
                        "--device", sz.device, "--work-dir", str(search), "--quiet"]],
                      lambda: _torchrun_summary(search, sz.torchrun_procs, sz.device)))

    det = out / "detector"
    data = det / "coco"
    det.mkdir(parents=True, exist_ok=True)
    space = get_space("spos-small")  # a digits-sized backbone, as the demo config expects
    save_arch(Arch.from_ops(space, ["k3e3"] * len(space.layers)), det / "arch.json")
    make_coco_demo(data, SynthConfig(num_train=sz.det_iters * sz.det_batch, num_val=sz.det_val))
    options = [f"model.backbone.arch={det / 'arch.json'}", "model.backbone.init_cfg.checkpoint=scratch",
               *(f"{dl}.dataset.data_root={data}/" for dl in ("train_dataloader", "val_dataloader", "test_dataloader")),
               *(f"{ev}.ann_file={data}/annotations/instances_val2017.json" for ev in ("val_evaluator", "test_evaluator")),
               f"train_dataloader.batch_size={sz.det_batch}", "train_cfg.max_epochs=1", "train_cfg.val_interval=1",
               "default_hooks.logger.interval=5",
               "model.test_cfg.score_thr=0"]  # a barely trained model: its weak boxes must still reach the NMS
    steps.append(Step("detector", f"mim train {sz.det_iters} iterations + validation (NMS on the device)",
                      [[py, "tools/det.py", "train", "configs/bnnas_effdet_demo.py", "--gpus", "1" if gpu else "0",
                        "--work-dir", str(det / "work"), "--cfg-options", *options]],
                      lambda: _detector_summary(det / "work", sz.det_iters, sz.det_val)))
    steps.append(Step("row-5", "detector train step / inference vs effdet d0",
                      [[*bench, "--rows", "5", "--json", str(out / "bench_row_5.json")]],
                      lambda: _bench_summary(out / "bench_row_5.json", (5,), gpu)))
    return steps


def _device_summary(path: Path) -> str:
    info = json.loads(path.read_text())
    v = info["versions"]
    where = (", ".join(f"{g['name']} ({g['memory_gib']} GiB, sm {g['capability']})" for g in info["gpus"])
             + f"; driver {info['driver']}" if info["device"] == "cuda" else "cpu")
    return f"{where}; torch {v['torch']} (CUDA {v['torch cuda']}), mmcv ops CUDA: {v['mmcv ops cuda']}"


# ------------------------------------------------------------------------------------------------ running
def _run_command(cmd: list[str], env: dict[str, str], log, limit: float) -> int:
    """Run ``cmd`` in its own session; past ``limit`` seconds the whole session (torchrun's and mim's children
    too) is killed and the exit status is 124, as timeout(1) reports it."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=max(1.0, limit))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return 124


def run_step(step: Step, out: Path, limit: float, env: dict[str, str]) -> StepResult:
    res = StepResult(step.name, step.what, commands=[" ".join(c) for c in step.commands])
    log_path = out / "logs" / f"{step.name}.log"
    res.log = str(log_path.relative_to(out))
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        for cmd in step.commands:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            rc = _run_command(cmd, env, log, limit - (time.perf_counter() - t0))
            if rc != 0:
                res.ok = False
                res.result = ("time limit reached" if rc == 124 else f"exit status {rc}") + f"; see {res.log}"
                break
    res.seconds = round(time.perf_counter() - t0, 1)
    if res.ok is None:
        try:
            res.result, res.ok = step.summarize(), True
        except Exception as e:  # a step that exits 0 without its outputs failed too
            res.result, res.ok = f"outputs incomplete: {type(e).__name__}: {e}", False
    return res


def tail(path: Path, n: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def check(out: Path, smoke: bool, budget: float | None, command: str) -> list[StepResult]:
    """Run the steps into ``out`` (a new folder), rewriting gpu_check.json after each; print the table."""
    import torch

    from bnnas.errors import BNNASError
    from bnnas.outputs.checkpoint import atomic_write_text
    from bnnas.outputs.table import format_table

    if (out / "gpu_check.json").exists():  # its runs would resume instead of running
        raise BNNASError(f"{out} holds an earlier check; give a new folder")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    sz = sizes(smoke, torch.cuda.device_count() if not smoke else 0)
    budget = sz.budget if budget is None else budget
    py = sys.executable
    env = dict(os.environ)  # scripts/gpu_check.sh put the checkout first on PYTHONPATH
    if smoke:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    doc = {"command": command, "mode": "smoke (CPU, toy sizes)" if smoke else "gpu",
           "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "budget_s": budget,
           "host": platform.node(), "steps": []}
    results: list[StepResult] = []

    def write() -> None:
        doc["steps"] = [asdict(r) for r in results]
        doc["ok"] = bool(results) and all(r.ok for r in results)
        doc["wall_s"] = round(time.perf_counter() - t_all, 1)
        atomic_write_text(out / "gpu_check.json", json.dumps(doc, indent=1) + "\n")

    t_all = time.perf_counter()
    print(f"gpu check ({doc['mode']}) -> {out / 'gpu_check.json'}", flush=True)
    for step in build_steps(out, sz, py):
        left = budget - (time.perf_counter() - t_all)
        if left <= 1 or (results and results[0].name == "device" and not results[0].ok):
            why = (f"not run: the time budget is spent (--budget {budget:.0f})" if left <= 1
                   else "not run: the device check failed")
            results.append(StepResult(step.name, step.what, ok=False, result=why))
        else:
            results.append(run_step(step, out, min(sz.limits[step.name], left), env))
        r = results[-1]
        if r.name == "device" and r.ok:
            info = json.loads((out / "device.json").read_text())
            doc.update(versions=info["versions"], pinned_differences=pinned_differences(info["versions"]),
                       device=info)
        write()
        print(f"[{time.perf_counter() - t_all:5.0f} s] {r.name}: {'ok' if r.ok else 'FAILED'} ({r.seconds} s) "
              f"{r.result}", flush=True)
        if not r.ok and r.log and (out / r.log).is_file():
            print("    " + tail(out / r.log).replace("\n", "\n    "), flush=True)
    print()
    print(format_table([(r.name, "ok" if r.ok else "FAILED", f"{r.seconds:.0f}", r.result) for r in results],
                       ("step", "status", "s", "result")))
    if doc.get("versions"):
        print("\nversions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()))
        if doc["pinned_differences"]:
            print("not the pinned versions: " + "; ".join(doc["pinned_differences"]))
    print(f"\n{sum(bool(r.ok) for r in results)}/{len(results)} steps ok in {doc['wall_s']:.0f} s; "
          f"{out / 'gpu_check.json'}")
    return results


def main(argv: list[str] | None = None) -> int:
    import bnnas.cli.common as cli
    from bnnas.errors import BNNASError

    ap = cli.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", help="output folder (gpu_check.json, logs/, each step's outputs)")
    ap.add_argument("--smoke", action="store_true", help="the same steps on the CPU at toy sizes")
    ap.add_argument("--budget", type=cli.positive_float, default=None,
                    help="seconds for all steps together (default: 300 on the GPU, 600 for --smoke)")
    ap.add_argument("--probe", default=None, help=argparse.SUPPRESS)  # the device step, run as a subprocess
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)

    def run(args: argparse.Namespace) -> None:
        if args.probe:
            Path(args.probe).write_text(json.dumps(probe(args.device), indent=1) + "\n")
            return
        if not args.out:
            raise BNNASError("give the output folder: scripts/gpu_check.sh [--smoke] OUT_DIR")
        command = "scripts/gpu_check.sh " + " ".join(argv if argv is not None else sys.argv[1:])
        out = Path(args.out).resolve()  # the steps run in the checkout
        failed = [r.name for r in check(out, args.smoke, args.budget, command) if not r.ok]
        if failed:
            raise BNNASError(f"{len(failed)} step(s) failed: {', '.join(failed)}; see {out / 'logs'}")

    return cli.main(ap, run, argv)


if __name__ == "__main__":
    sys.exit(main())
