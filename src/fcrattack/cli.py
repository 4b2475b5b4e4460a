"""The ``fcrattack`` command line: ``attack``, ``cam``, ``train`` and ``demo``.

Parsing only; the work is done by the library. User errors (missing paths, unknown names, bad
options) print one line ``fcrattack: error: ...`` and exit with code 2 (``-v`` adds the
traceback to the log).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import math
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import __version__
from .attacks import ATTACKS, FCR, Attack, AttackResult, RegionDDN
from .cam import fcr_mask, find_layer, gradcam
from .data import CIFAR10_CLASSES, Dataset, cifar10, class_folder, imagenet_folder, samples
from .experiments.cli import register as register_experiments
from .experiments.distributed import Context as DistContext
from .models import ARCHITECTURES, default_model, load_model
from .report_html import SUMMARY_NOTE, image_rows, markdown_table, write_page
from .train import TrainConfig, export_weights, train
from .viz import cam_overlay, display_factor, mask_image, save_png

log = logging.getLogger("fcrattack.cli")

USER_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError, ImportError)


class CLIError(Exception):
    """A user error: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see `{self.prog} --help`)")


# ----------------------------------------------------------------------------- helpers


def _setup_logging(verbosity: int) -> None:
    """INFO (default), DEBUG (-v) or WARNING (-q) from the ``fcrattack`` loggers to stderr."""
    logger = logging.getLogger("fcrattack")
    for h in [h for h in logger.handlers if getattr(h, "_fcrattack_cli", False)]:
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._fcrattack_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError("--device cuda requested but CUDA is not available")
    return torch.device(name)


def _parse_value(text: str) -> Any:
    """'true'/'false' -> bool, 'none' -> None, int, float, 'a/b' -> a / b, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    frac = re.fullmatch(r"\s*([0-9.eE+-]+)\s*/\s*([0-9.eE+-]+)\s*", text)
    if frac:
        try:
            return float(frac.group(1)) / float(frac.group(2))
        except (ValueError, ZeroDivisionError):
            pass
    return text


def parse_opts(items: Sequence[str]) -> dict[str, Any]:
    """``["t=0.2", "steps=20"]`` -> ``{"t": 0.2, "steps": 20}``."""
    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key.strip()):
            raise CLIError(f"bad --opt {item!r}: expected key=value, e.g. --opt steps=20")
        opts[key.strip()] = _parse_value(value.strip())
    return opts


def attack_class(name: str, opts: dict[str, Any]) -> type[Attack]:
    """``ATTACKS[name]`` after checking that ``opts`` are keyword options of its constructor."""
    if name not in ATTACKS:
        raise CLIError(f"unknown attack {name!r}; choose one of {', '.join(sorted(ATTACKS))}")
    cls = ATTACKS[name]
    params = inspect.signature(cls.__init__).parameters
    valid = sorted(k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise CLIError(f"unknown option(s) {', '.join(unknown)} for attack {name!r}; valid: "
                       f"{', '.join(valid)}")
    return cls


def build_attack(cls: type[Attack], model: torch.nn.Module, opts: dict[str, Any], *,
                 preset: str | None = None, dataset: str = "cifar10") -> Attack:
    """Instantiate ``cls`` with keyword options, or its ``paper(model, dataset)`` preset with
    the options as overrides."""
    if preset == "paper" and not hasattr(cls, "paper"):
        raise CLIError(f"attack {cls.name!r} has no paper preset")
    try:
        if preset == "paper":
            return cls.paper(model, "imagenet" if dataset == "imagenet" else "cifar10", **opts)
        return cls(model, **opts)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"attack {cls.name!r}: {exc}") from exc


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _concat(parts: list[AttackResult]) -> AttackResult:
    """One AttackResult from the results of consecutive chunks of the same attack."""

    def cat(values: list) -> Any:
        if values[0] is None:
            return None
        if isinstance(values[0], torch.Tensor):
            return torch.cat(values)
        if isinstance(values[0], dict):
            return {k: cat([v[k] for v in values]) for k in values[0]}
        return values[0]

    if len(parts) == 1:
        return parts[0]
    return AttackResult(**{f.name: cat([getattr(p, f.name) for p in parts])
                           for f in dataclasses.fields(AttackResult)})


def _rel_png(image_id: str) -> Path:
    """Relative output path of an image id (its folder structure kept, suffix .png)."""
    rel = Path(image_id).with_suffix(".png")
    if rel.is_absolute() or ".." in rel.parts:
        rel = Path(re.sub(r"[^\w.-]+", "_", image_id)).with_suffix(".png")
    return rel


def _bar(iterable, quiet: bool, **kwargs):
    return tqdm(iterable, disable=True if quiet else None, **kwargs)


def _load_data(args: argparse.Namespace) -> tuple[Dataset, str]:
    """The data set of --data/--dataset/--n/--seed and its kind (cifar10, imagenet, folder)."""
    if args.data is None:
        data = samples(args.n, args.seed if args.n else None)
        log.info("no --data: using %d of the bundled CIFAR-10 samples", len(data))
        return data, "cifar10"
    path = Path(args.data)
    if not path.exists():
        raise CLIError(f"data path not found: {path}")
    kind = args.dataset or ("imagenet" if args.model == "efficientnet-lite0" else "cifar10")
    if kind == "cifar10":
        data = cifar10(path, "test", n=args.n, seed=args.seed)
    elif kind == "imagenet":
        data = imagenet_folder(path, n=args.n, seed=args.seed)
    else:
        data = class_folder(path, n=args.n, seed=args.seed)
    log.info("loaded %d images (%s) from %s", len(data), kind, path)
    return data, kind


def _load_model(args: argparse.Namespace, device: torch.device) -> torch.nn.Module:
    if args.arch is not None and args.arch not in ARCHITECTURES:
        raise CLIError(f"unknown architecture {args.arch!r}; choose one of "
                       f"{', '.join(sorted(ARCHITECTURES))}")
    spec = args.model
    if spec not in ("default", "efficientnet-lite0") and not Path(spec).is_file():
        raise CLIError(f"unknown model {spec!r}: not 'default', 'efficientnet-lite0' or an "
                       "existing checkpoint file")
    model = load_model(spec, arch=args.arch).to(device)
    log.info("model %s on %s", spec, device)
    return model


def _cams(model: torch.nn.Module, data: Dataset, device: torch.device, batch_size: int,
          layer: str | None, use_labels: bool, quiet: bool) -> torch.Tensor:
    """Normalised Grad-CAM maps (N, H, W) on the CPU, for the true (or predicted) class."""
    maps = []
    for i in _bar(range(0, len(data), batch_size), quiet, desc="grad-cam", unit="batch"):
        x = data.images[i:i + batch_size].to(device)
        y = data.labels[i:i + batch_size].to(device) if use_labels else None
        maps.append(gradcam(model, x, y, layer=layer).cpu())
    return torch.cat(maps)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(_json_safe(row)) + "\n")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(_json_safe(obj), indent=2) + "\n", encoding="utf-8")


def _attack_options(atk: Attack) -> dict[str, Any]:
    return {k: v for k, v in vars(atk).items()
            if k != "model" and isinstance(v, (bool, int, float, str, type(None)))}


# ----------------------------------------------------------------------------- commands


def cmd_attack(args: argparse.Namespace) -> int:
    """Attack a data set; write adversarial PNGs, CAM overlays, per-image JSONL, summary.

    Under ``torchrun`` each rank attacks ``images[rank::world]`` (per-image seeds come from the
    image ids, so the records equal a single-process run) and rank 0 writes the merged JSONL
    and summary."""
    opts = {"seed": args.seed, **parse_opts(args.opt)}
    cls = attack_class(args.attack, opts)
    ctx, device = DistContext.from_env(_device(args.device))
    try:
        return _attack(args, cls, opts, ctx, device)
    finally:
        ctx.close()


def _attack(args: argparse.Namespace, cls: type[Attack], opts: dict[str, Any],
            ctx: DistContext, device: torch.device) -> int:
    data, kind = _load_data(args)
    model = _load_model(args, device)
    atk = build_attack(cls, model, opts, preset=args.preset, dataset=kind)
    log.info("attack %r", atk)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    index = ctx.shard(list(range(len(data))))
    mine = data.subset(index) if ctx.active else data
    bs = args.batch_size
    t0 = time.perf_counter()
    parts = []
    for i in _bar(range(0, len(mine), bs), args.quiet or not ctx.is_main, desc=atk.name,
                  unit="batch"):
        parts.append(atk.run(mine.images[i:i + bs], mine.labels[i:i + bs],
                             ids=mine.ids[i:i + bs]))
    result = _concat(parts) if parts else None
    elapsed = time.perf_counter() - t0
    cams = None
    if result is not None and result.mask is not None:
        cams = _cams(model, mine, device, bs, getattr(atk, "layer", None),
                     getattr(atk, "cam_class", "true") == "true", args.quiet)
    scale = display_factor(data.images.shape[-1])
    rows = result.records(mine.ids) if result is not None else []
    for i, row in enumerate(_bar(rows, args.quiet or not ctx.is_main, desc="writing",
                                 unit="img")):
        rel = _rel_png(mine.ids[i])
        save_png(result.x_adv[i], out / "adv" / rel)
        row["adv_png"] = str(Path("adv") / rel)
        if cams is not None:
            save_png(cam_overlay(mine.images[i], cams[i]), out / "cam" / rel, scale)
            save_png(mask_image(result.mask[i]), out / "mask" / rel, scale)
    if ctx.active:  # rank 0 gathers every rank's rows and results, in the images' order
        gathered: list[Any] = [None] * ctx.world
        torch.distributed.all_gather_object(gathered, (index, rows, result))
        if not ctx.is_main:
            return 0
        order = sorted((i, r) for idx, rs, _ in gathered for i, r in zip(idx, rs))
        rows = [r for _, r in order]
        result = _concat([res for _, _, res in gathered if res is not None])
    _write_jsonl(out / "results.jsonl", rows)
    summary = result.summary()
    _write_json(out / "summary.json", {
        "attack": atk.name, "options": _attack_options(atk), "preset": args.preset,
        "model": args.model, "data": args.data or "bundled samples", "dataset": kind,
        "n_images": len(data), "seconds": elapsed, "processes": ctx.world, "summary": summary,
        "conventions": SUMMARY_NOTE})
    print(markdown_table({atk.name: summary}))
    log.info("wrote %s (adv/, results.jsonl, summary.json%s)", out,
             ", cam/, mask/" if cams is not None else "")
    return 0


def cmd_cam(args: argparse.Namespace) -> int:
    """Grad-CAM heat-map overlays and FCR masks for a data set."""
    if not 0 <= args.t <= 1:
        raise CLIError(f"--t must lie in [0, 1], got {args.t}")
    device = _device(args.device)
    data, _ = _load_data(args)
    model = _load_model(args, device)
    layer = args.layer or find_layer(model, data.images[:1].to(device))
    print(f"Grad-CAM layer: {layer}")
    cams = _cams(model, data, device, args.batch_size, layer, args.cam_class == "true",
                 args.quiet)
    masks = fcr_mask(cams, args.t)
    out = Path(args.out)
    scale = display_factor(data.images.shape[-1])
    for i in _bar(range(len(data)), args.quiet, desc="writing", unit="img"):
        rel = _rel_png(data.ids[i])
        save_png(cam_overlay(data.images[i], cams[i]), out / "cam" / rel, scale)
        save_png(mask_image(masks[i]), out / "mask" / rel, scale)
    print(f"{len(data)} images, mean mask area {100 * float(masks.mean()):.1f} % at t = {args.t}"
          f"; wrote {out / 'cam'} and {out / 'mask'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a CIFAR architecture on <data>/train (uint8 in memory), evaluate on <data>/test."""
    if args.arch not in ARCHITECTURES:
        raise CLIError(f"unknown architecture {args.arch!r}; choose one of "
                       f"{', '.join(sorted(ARCHITECTURES))}")
    root = Path(args.data)
    if not (root / "train").is_dir():
        raise CLIError(f"no train/ folder under {root} (expected <data>/train/<class>/*.jpg)")
    if args.init is not None and not Path(args.init).is_file():
        raise CLIError(f"--init checkpoint not found: {args.init}")
    device = _device(args.device)
    train_data = class_folder(root / "train", classes=CIFAR10_CLASSES, uint8=True)
    test_data = cifar10(root, "test") if (root / "test").is_dir() else None
    log.info("training %s on %d images (%s test images) on %s", args.arch, len(train_data),
             len(test_data) if test_data is not None else "no", device)
    cfg = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, init=args.init)
    train(cfg, train_data, test_data, args.out, device)
    ckpt = Path(args.out) / "last.pt"
    print(f"checkpoint: {ckpt}")
    if args.export:
        export_weights(ckpt, args.export)
        print(f"exported weights: {args.export}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """FCR (paper CIFAR-10 preset, select last and best) and fcr-ddn (the stable region
    attack, same mask) on the bundled samples with the embedded default model; writes an HTML
    page."""
    t0 = time.perf_counter()
    device = _device(args.device)
    model = default_model().to(device)
    data = samples(args.n)
    out = Path(args.out)
    x, y = data.images, data.labels
    cams = _cams(model, data, device, len(data), None, True, args.quiet)
    mask = fcr_mask(cams, 0.2)
    runs: dict[str, Attack] = {
        "FCR paper, select=last": FCR.paper(model, "cifar10", select="last", seed=args.seed),
        "FCR paper, select=best": FCR.paper(model, "cifar10", select="best", seed=args.seed),
        "fcr-ddn (t=0.2, 100 steps, 8-bit)": RegionDDN(model, t=0.2, quantize=True,
                                                      seed=args.seed),
    }
    results: dict[str, AttackResult] = {}
    for name, atk in runs.items():
        results[name] = atk.run(x, y, mask=mask, ids=data.ids)
        log.info("%s done (%.1f s elapsed)", name, time.perf_counter() - t0)
    headers, rows = image_rows(out, x, y, data.ids, data.classes, cams, results)
    summaries = {name: res.summary() for name, res in results.items()}
    _write_jsonl(out / "results.jsonl", [{"run": name, **row} for name, res in results.items()
                                         for row in res.records(data.ids)])
    _write_json(out / "summary.json", {"model": "default", "n_images": len(data),
                                       "summaries": summaries, "conventions": SUMMARY_NOTE})
    intro = (f"FCR attack, paper CIFAR-10 preset (t=0.2, T=0.03, lr=10, N=20, beta=1), on "
             f"{len(data)} bundled CIFAR-10 test images with fcrattack's embedded default model "
             "(ResNet-20). select=last returns the algorithm's last iterate (the literal "
             "algorithm); select=best keeps, per image, the smallest-L2 successful iterate. "
             "fcr-ddn is fcrattack's stable minimum-norm attack restricted to the same FCR mask "
             f"(docs/reproduction.md explains why the literal algorithm's L2 is large). "
             f"fcrattack {__version__}.")
    page = write_page(out / "index.html", "fcrattack demo", intro, summaries, headers, rows)
    print(markdown_table(summaries))
    print(f"\npage: {page.resolve()}  ({time.perf_counter() - t0:.1f} s)")
    return 0


# ----------------------------------------------------------------------------- parser


def _common(p: argparse.ArgumentParser, batch_size: int = 128) -> None:
    p.add_argument("--model", default="default",
                   help="'default' (embedded CIFAR-10 ResNet-20), 'efficientnet-lite0' or a "
                        "checkpoint path (default: %(default)s)")
    p.add_argument("--arch", help="architecture of a bare checkpoint (e.g. resnet20)")
    p.add_argument("--data", help="data folder (default: the 40 bundled CIFAR-10 samples)")
    p.add_argument("--dataset", choices=["cifar10", "imagenet", "folder"],
                   help="layout of --data: CIFAR-10 (<data>/test/<class>/* or the pickle "
                        "release), ImageNet val folders, or <data>/<class>/* (default: imagenet "
                        "for efficientnet-lite0, else cifar10)")
    p.add_argument("--n", type=int, help="number of images (seeded random subset)")
    p.add_argument("--seed", type=int, default=0, help="subset and attack seed (default 0)")
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help="images per batch (default %(default)s)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", required=True, help="output folder")


def _global_flags(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("--threads", type=int, default=None if default is False else default,
                   help="CPU threads for torch (default: 1 for demo, else torch's choice; "
                        "1 is often fastest on a busy machine)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="debug logging")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="warnings only, no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``fcrattack`` command; -v/-q/--threads go before or after
    COMMAND."""
    parser = _Parser(prog="fcrattack", description="Region-focused adversarial attacks (the "
                     "FCR attack) on image classifiers: attack, cam, train, demo, "
                     "reproduce, report.")
    parser.add_argument("--version", action="version", version=f"fcrattack {__version__}")
    _global_flags(parser, False)
    flags = _Parser(add_help=False)
    _global_flags(flags, argparse.SUPPRESS)  # SUPPRESS: keep the value given before COMMAND
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    p = sub.add_parser("attack", parents=[flags],
                       help="attack images, write adversarial PNGs and metrics")
    _common(p)
    p.add_argument("--attack", default="fcr", help=f"one of {', '.join(sorted(ATTACKS))} "
                                                   "(default: %(default)s)")
    p.add_argument("--preset", choices=["paper"],
                   help="the paper's hyper-parameters (CIFAR-10 or ImageNet by --dataset)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="attack option, repeatable, e.g. --opt t=0.2 --opt steps=20 "
                        "--opt select=best (values: int, float, a/b, true/false, none, text)")
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("cam", parents=[flags],
                       help="Grad-CAM heat-map overlays and FCR masks")
    _common(p)
    p.add_argument("--layer", help="module name for Grad-CAM (default: auto, printed)")
    p.add_argument("--t", type=float, default=0.2, help="mask threshold (default 0.2)")
    p.add_argument("--cam-class", choices=["true", "pred"], default="true",
                   help="class whose evidence is mapped (default: true label)")
    p.set_defaults(func=cmd_cam)

    p = sub.add_parser("train", parents=[flags],
                       help="train a CIFAR-10 model (resumes from OUT/last.pt)")
    p.add_argument("--arch", default="resnet20",
                   help=f"one of {', '.join(sorted(ARCHITECTURES))} (default: %(default)s)")
    p.add_argument("--data", required=True, help="CIFAR-10 root with train/<class>/* "
                                                 "(and test/<class>/* for evaluation)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", help="checkpoint to start from (fine-tuning)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--export", help="also write inference-only weights to this path")
    p.add_argument("--out", required=True, help="run folder (last.pt is written each epoch)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", parents=[flags],
                       help="FCR on the bundled samples, with an HTML page")
    p.add_argument("--out", default="fcrattack-demo", help="output folder (default: %(default)s)")
    p.add_argument("--n", type=int, default=40, help="number of samples, 1-40 (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=cmd_demo)
    register_experiments(sub, parents=[flags])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CLIError as exc:
        print(f"fcrattack: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    _setup_logging(-1 if args.quiet else 1 if args.verbose else 0)
    for name in ("n", "batch_size", "epochs", "threads"):
        if getattr(args, name, None) is not None and getattr(args, name) < 1:
            print(f"fcrattack: error: --{name.replace('_', '-')} must be positive",
                  file=sys.stderr)
            return 2
    previous = torch.get_num_threads()
    threads = args.threads or (1 if args.command == "demo" else None)  # demo: small batches
    if threads:
        torch.set_num_threads(threads)
    try:
        return args.func(args)
    except (CLIError, *USER_ERRORS) as exc:
        log.debug("error details", exc_info=True)
        print(f"fcrattack: error: {exc}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(previous)


if __name__ == "__main__":
    sys.exit(main())
