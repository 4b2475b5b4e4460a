"""One function per command: resolve the arguments (device, data, model, options) with clear
errors, then call the library function that does the work."""

from __future__ import annotations

import argparse
import logging
import re
import time
from pathlib import Path

from .. import experiments, report
from ..app.attack_dataset import attack_dataset
from ..app.cam_maps import write_cams
from ..app.demo import run_demo
from ..attacks import (
    ALIASES,
    ATTACKS,
    attack_class,
    build,
    describe,
    parse_options,
    summary,
    supports_grid,
    uses_cam,
)
from ..base.distributed import Context, is_main
from ..base.outputs import OutputError
from ..base.validation import resolve_device
from ..cam import SCRIPTED
from ..data import CIFAR10_CLASSES, cifar10, class_folder
from ..models import ModelInfo
from ..models.exported import CHECKPOINT, check_export, export_weights
from ..models.train import TrainConfig, train
from ..report import summary_markdown
from .inputs import CLIError, load_cli_model, load_data, parse_target

log = logging.getLogger("fcrattack.cli")

USER_ERRORS = (FileNotFoundError, NotADirectoryError, OutputError, ValueError, ImportError)


def parse_opts(items: list[str]) -> dict[str, str]:
    """``["t=0.2", "steps=20"]`` -> ``{"t": "0.2", "steps": "20"}`` (text; the attack's
    declared options give the types)."""
    opts: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key.strip()):
            raise CLIError(f"bad --opt {item!r}: expected key=value, e.g. --opt steps=20")
        if key.strip() in opts:
            raise CLIError(
                f"--opt {key.strip()} is given twice ({key.strip()}={opts[key.strip()]} and "
                f"{item.strip()}): give each option once"
            )
        opts[key.strip()] = value.strip()
    return opts


def refuse_scripted(spec: str, what: str) -> None:
    """Refuse a ``torchscript:`` model for ``what`` (a command or attack that needs
    Grad-CAM) before any model or data is loaded."""
    if spec.startswith("torchscript:"):
        raise CLIError(
            f"{what} needs Grad-CAM, and {SCRIPTED}; or use an attack without a region on it "
            "(e.g. --attack pgd)"
        )


def paper_dataset(kind: str, info: ModelInfo) -> str:
    """The data set whose paper settings ``--preset paper`` uses: the model's label space when
    known, else the kind of data (imagenet, or cifar10 for everything else)."""
    return info.dataset or ("imagenet" if kind == "imagenet" else "cifar10")


def cmd_attack(args: argparse.Namespace) -> int:
    """Attack a data set; write adversarial PNGs, CAM overlays, JSONL, summary and a page.
    Every attack optimises on the 8-bit grid (``quantize=True``; ``--opt quantize=false`` is
    refused): the PNGs are what the records describe and the summary counts."""
    try:  # every option error before any data or model is loaded
        cls = attack_class(args.attack)
        options = {"seed": args.seed, **parse_options(args.attack, parse_opts(args.opt))}
    except (TypeError, ValueError) as exc:
        raise CLIError(f"attack {args.attack!r}: {exc}") from exc
    if supports_grid(cls) and options.setdefault("quantize", True) is False:
        raise CLIError(
            f"attack {args.attack!r}: --opt quantize=false is refused: the command line "
            "saves 8-bit PNGs and records what they hold, and float results would be "
            "rounded after the attack (most minimum-norm ones then fool nothing). For "
            "float results use Python (fcrattack.build(name, model).run)"
        )
    if uses_cam(cls):
        refuse_scripted(args.model, f"--attack {cls.name} (a region attack)")
    if options.get("targeted") and args.target is None:
        raise CLIError("--opt targeted=true needs --target CLASS|least-likely|random")
    if args.target is not None:
        if options.get("targeted") is False:
            raise CLIError("--target makes the attack targeted: drop --opt targeted=false")
        options["targeted"] = True
    ctx, device = Context.from_env(resolve_device(args.device))
    try:
        model = load_cli_model(args, device)
        info = model.info or ModelInfo(args.model)
        target = parse_target(args.target, info)
        data, kind = load_data(args, info)
        try:
            attack = build(
                args.attack,
                model,
                preset=args.preset,
                dataset=None if args.preset is None else paper_dataset(kind, info),
                **options,
            )
        except (TypeError, ValueError) as exc:
            raise CLIError(f"attack {args.attack!r}: {exc}") from exc
        log.info("attack %r", attack)
        summary = attack_dataset(
            attack,
            data,
            args.out,
            batch_size=args.batch_size,
            target=target,
            page=args.page,
            ctx=ctx,
            overwrite=args.overwrite,
            quiet=args.quiet,
            info={
                "preset": args.preset,
                "model": args.model,
                "data": args.data or "bundled samples",
                "dataset": kind,
                "labels": args.labels,
                "size": args.size,
                "resize": args.resize,
            },
        )
    finally:
        ctx.close()
    if summary is not None:
        print(summary_markdown({attack.name: summary}))
    return 0


def cmd_attacks(args: argparse.Namespace) -> int:
    """List the attacks, or describe one attack's options."""
    if args.name:
        print(describe(args.name))
        return 0
    for name in ATTACKS:
        print(f"{name:12s} {summary(name)}")
    for alias, name in ALIASES.items():
        print(f"{alias:12s} = {name}")
    return 0


def cmd_cam(args: argparse.Namespace) -> int:
    """Grad-CAM heat-map overlays and FCR masks for a data set."""
    if not 0 <= args.t <= 1:
        raise CLIError(f"--t must lie in [0, 1], got {args.t}")
    refuse_scripted(args.model, "fcrattack cam")
    model = load_cli_model(args, resolve_device(args.device))
    data, _ = load_data(args, model.info or ModelInfo(args.model))
    done = write_cams(
        model,
        data,
        args.out,
        t=args.t,
        layer=args.layer,
        use_labels=args.cam_class == "true",
        batch_size=args.batch_size,
        page=args.page,
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    out = Path(args.out)
    print(f"Grad-CAM layer: {done.layer}")
    lost = done.unreadable
    print(
        f"{done.written} images, mean mask area {100 * done.area:.1f} % at t = {args.t}; wrote "
        f"{out / 'cam'} and {out / 'mask'}" + (f", page {out / 'index.html'}" if args.page else "")
    )
    if lost:
        names = ", ".join(lost[:5]) + (", ..." if len(lost) > 5 else "")
        print(f"{len(lost)} unreadable files not written: {names}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a CIFAR architecture on <data>/train (uint8 in memory), evaluate on <data>/test."""
    try:  # every setting checked before any data is read
        cfg = TrainConfig(
            arch=args.arch,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            init=args.init,
        )
    except (TypeError, ValueError) as exc:
        raise CLIError(f"train: {exc}") from exc
    root = Path(args.data)
    if not (root / "train").is_dir():
        raise CLIError(f"no train/ folder under {root} (expected <data>/train/<class>/*.jpg)")
    if args.init is not None and not Path(args.init).is_file():
        raise CLIError(f"--init checkpoint not found: {args.init}")
    if args.export is not None:  # before training: a bad path would fail only at its end
        keep = [args.init] if args.init is not None else []
        check_export(args.export, args.out, keep=keep)
    device = resolve_device(args.device)
    train_data = class_folder(root / "train", classes=CIFAR10_CLASSES, uint8=True)
    test_data = cifar10(root, "test") if (root / "test").is_dir() else None
    log.info(
        "training %s on %d images (%s test images) on %s",
        args.arch,
        len(train_data),
        len(test_data) if test_data is not None else "no",
        device,
    )
    train(cfg, train_data, test_data, args.out, device, quiet=args.quiet)
    checkpoint = Path(args.out) / CHECKPOINT
    print(f"checkpoint: {checkpoint}")
    if args.export:
        export_weights(checkpoint, args.export)
        print(f"exported weights: {args.export}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """FCR and region DDN on the bundled samples with the default model, as an HTML page."""
    t0 = time.perf_counter()
    summaries, page = run_demo(
        args.out,
        n=args.n,
        seed=args.seed,
        device=resolve_device(args.device),
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    print(summary_markdown(summaries))
    print(f"\npage: {page.resolve()}  ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run the experiment(s), then render the report into the same folder."""
    device = resolve_device(args.device)
    times = experiments.reproduce(
        args.name, args.scale, args.out, device, n=args.n, root=args.shared, quiet=args.quiet
    )
    for name, seconds in times.items():
        log.info("%-24s %8.1f s", name, seconds)
    if not is_main():  # under torchrun: rank 0 renders the report
        return 0
    md, page = report.render(args.out)
    log.info("total %.1f s; report: %s, %s", sum(times.values()), md, page)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render report.md and report.html from an output folder."""
    md, page = report.render(args.out)
    log.info("report: %s, %s", md, page)
    return 0
