"""The argparse parser of the ``fcrattack`` command; -v/-q/--threads go before or after
COMMAND. Attack options (``--opt key=value``) are read through the attacks' declared options
(``fcrattack.attacks.parse_options``), so the command line knows every option an attack
takes, with its type; ``fcrattack attacks NAME`` lists them."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .._version import __version__
from ..attacks import ALIASES, ATTACKS, DEFAULT_ATTACK, FCR, RegionDDN
from ..data import POLICIES
from ..experiments import EXPERIMENTS, SCALES
from ..models import ARCHITECTURES
from . import commands
from .commands import CLIError
from .values import SAMPLES, count, floats, out_dir, positive, samples, seed, threads


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see `{self.prog} --help`)")


def _common(p: argparse.ArgumentParser, batch_size: int = 128) -> None:
    model = p.add_argument_group("model")
    model.add_argument(
        "--model",
        default="default",
        help="'default' (embedded CIFAR-10 ResNet-20), 'vgg11-cifar10' (VGG-11 trained here), "
        "'efficientnet-lite0|1|2', a checkpoint "
        "file, torchvision:NAME[:WEIGHTS], timm:NAME, torchscript:PATH, export:PATH or "
        "py:package.module:callable[?key=value&...] (default: %(default)s; weights are "
        "never downloaded)",
    )
    model.add_argument("--arch", help="architecture of a bare checkpoint (e.g. resnet20)")
    model.add_argument(
        "--mean",
        type=floats,
        help="per-channel mean of the model's normalisation, e.g. 0.485,0.456,0.406 "
        "(torchscript:, export:, py: and bare checkpoints; not given: the model takes [0, 1])",
    )
    model.add_argument("--std", type=floats, help="per-channel std, with --mean")
    model.add_argument(
        "--classes",
        help="the model's class names: cifar10, imagenet, or a file (JSON list or one per "
        "line); default: from the model",
    )
    data = p.add_argument_group("data")
    data.add_argument("--data", help="data folder (default: the 40 bundled CIFAR-10 samples)")
    data.add_argument(
        "--dataset",
        choices=["cifar10", "imagenet", "folder"],
        help="layout of --data: CIFAR-10 (<data>/test/<class>/* or the pickle release), "
        "ImageNet val folders (<data>/val/<wnid>/*), or class folders <data>/<class>/* "
        "matched to the model's class names (default: guessed from the folder and model)",
    )
    data.add_argument(
        "--labels",
        metavar="pred|FILE",
        help="--data is a flat folder of images: 'pred' attacks the model's own prediction, "
        "FILE (CSV file,label or JSON {file: label}) gives class indices or names",
    )
    data.add_argument(
        "--size",
        type=positive,
        help="resize images to N x N pixels (default: the model's input size, if known)",
    )
    data.add_argument(
        "--resize",
        choices=list(POLICIES),
        default="crop",
        help="how images are brought to the model's input size (or --size): 'crop' (shorter "
        "side to the model's resize size, or to --size, then the centre square), 'stretch' "
        "(the whole image, aspect distorted) or 'none' (default: %(default)s)",
    )
    data.add_argument("--n", type=positive, help="number of images (seeded random subset)")
    data.add_argument(
        "--seed", type=seed, default=0, help="subset and attack seed, 0 to 2**32-1 (default 0)"
    )
    p.add_argument(
        "--batch-size",
        type=positive,
        default=batch_size,
        help="images read, attacked and written per chunk (default %(default)s); an attack's "
        "--opt batch_size=N|auto splits each chunk further",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    p.add_argument("--out", type=out_dir, required=True, help="output folder")


def _global_flags(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument(
        "--threads",
        type=threads,
        default=None if default is False else default,
        help="CPU threads for torch (default: 1 for demo, else torch's choice; "
        "1 is often fastest on a busy machine)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="debug logging"
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="warnings only, no progress bars",
    )


def _overwrite(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an earlier `fcrattack {command}` run in --out (only the files it wrote "
        "are deleted; a folder that no fcrattack run wrote is never replaced)",
    )


def _attack_commands(sub: Any, flags: argparse.ArgumentParser) -> None:
    names = ", ".join([*ATTACKS, *(f"{a} (= {b})" for a, b in ALIASES.items())])
    p = sub.add_parser(
        "attack",
        parents=[flags],
        help="attack images, write adversarial PNGs, metrics and a page",
        epilog="`fcrattack attacks NAME` lists an attack's options.",
    )
    _common(p)
    p.add_argument(
        "--attack",
        default=DEFAULT_ATTACK,
        help=f"one of {names} (default: %(default)s, the {RegionDDN.label}; fcr is "
        f"{FCR.label}, with large perturbations: see `fcrattack attacks fcr`)",
    )
    p.add_argument(
        "--preset",
        choices=["paper"],
        help="the paper's settings for the attack (CIFAR-10 or ImageNet by the model's "
        "label space, else by --dataset)",
    )
    p.add_argument(
        "--target",
        metavar="CLASS|least-likely|random",
        help="a targeted attack: towards CLASS (an index or a class name), the class of "
        "the smallest clean logit other than the label, or a random other class (seeded by "
        "--seed)",
    )
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="attack option, repeatable, e.g. --opt steps=20 --opt eps=16/255 "
        "--opt autocast=bf16 (types from the attack's declared options); every attack "
        "optimises for the saved 8-bit PNGs (quantize=true)",
    )
    p.add_argument(
        "--page",
        type=count,
        default=20,
        metavar="N",
        help="show the first N images on index.html (0: no page; default 20)",
    )
    _overwrite(p, "attack")
    p.set_defaults(func=commands.cmd_attack)

    p = sub.add_parser("attacks", parents=[flags], help="list the attacks, or the options of one")
    p.add_argument("name", nargs="?", help="an attack name")
    p.set_defaults(func=commands.cmd_attacks)

    p = sub.add_parser("cam", parents=[flags], help="Grad-CAM heat-map overlays and FCR masks")
    _common(p)
    p.add_argument(
        "--layer",
        help="module name for Grad-CAM, or name@k for the k-th call of a "
        "module called several times (default: auto, printed)",
    )
    p.add_argument("--t", type=float, default=0.2, help="mask threshold (default 0.2)")
    p.add_argument(
        "--page",
        type=count,
        default=20,
        metavar="N",
        help="show the first N images on index.html (0: no page; default 20)",
    )
    p.add_argument(
        "--cam-class",
        choices=["true", "pred"],
        default="true",
        help="class whose evidence is mapped (default: true label)",
    )
    _overwrite(p, "cam")
    p.set_defaults(func=commands.cmd_cam)


def _other_commands(sub: Any, flags: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "train", parents=[flags], help="train a CIFAR-10 model (resumes from OUT/last.pt)"
    )
    p.add_argument(
        "--arch",
        default="resnet20",
        help=f"one of {', '.join(sorted(ARCHITECTURES))} (default: %(default)s)",
    )
    p.add_argument(
        "--data",
        required=True,
        help="CIFAR-10 root with train/<class>/* (and test/<class>/* for evaluation)",
    )
    p.add_argument("--epochs", type=positive, default=30)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default 0.1)")
    p.add_argument("--batch-size", type=positive, default=128)
    p.add_argument("--seed", type=seed, default=0, help="0 to 2**32-1 (default 0)")
    p.add_argument("--init", help="checkpoint to start from (fine-tuning)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    p.add_argument(
        "--export",
        help="also write inference-only weights to this file (checked before training; an "
        "existing file is replaced only when it is an earlier export)",
    )
    p.add_argument(
        "--out", type=out_dir, required=True, help="run folder (last.pt is written each epoch)"
    )
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser(
        "demo", parents=[flags], help="FCR on the bundled samples, with an HTML page"
    )
    p.add_argument(
        "--out",
        type=out_dir,
        default="fcrattack-demo",
        help="output folder (default: %(default)s)",
    )
    p.add_argument(
        "--n", type=samples, default=SAMPLES, help="number of samples, 1-40 (default 40)"
    )
    p.add_argument("--seed", type=seed, default=0, help="0 to 2**32-1 (default 0)")
    _overwrite(p, "demo")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    p.set_defaults(func=commands.cmd_demo)

    p = sub.add_parser(
        "reproduce",
        parents=[flags],
        help="reproduce a table/figure of the FCR paper (or all), resumably",
        description="Run a named experiment (or 'all') into an output folder and render its "
        "report. Rerunning with the same folder resumes: finished images are not "
        "attacked again.",
    )
    p.add_argument("name", choices=[*EXPERIMENTS, "all"], help="experiment name or 'all'")
    p.add_argument(
        "--scale",
        "--preset",
        dest="scale",
        choices=list(SCALES),
        default="cpu",
        help="'paper': the paper's scale (GPU); 'cpu': shrunk (default). "
        "--preset is the old name of this flag",
    )
    p.add_argument(
        "--out",
        type=out_dir,
        default="runs/reproduce",
        help="output folder (default: %(default)s)",
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument(
        "--n", type=positive, default=None, help="override the number of images per part"
    )
    p.add_argument(
        "--shared",
        default=None,
        help="root of data/ and models/ (default: $FCRATTACK_SHARED or ../shared)",
    )
    p.set_defaults(func=commands.cmd_reproduce)

    p = sub.add_parser(
        "report", parents=[flags], help="render report.md/report.html of a reproduce run"
    )
    p.add_argument("out", type=out_dir, help="output folder of 'fcrattack reproduce'")
    p.set_defaults(func=commands.cmd_report)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = _Parser(
        prog="fcrattack",
        description="Region-focused adversarial attacks (the "
        "FCR attack) on image classifiers: attack, attacks, cam, train, demo, "
        "reproduce, report.",
    )
    parser.add_argument("--version", action="version", version=f"fcrattack {__version__}")
    _global_flags(parser, False)
    flags = _Parser(add_help=False)
    _global_flags(flags, argparse.SUPPRESS)  # SUPPRESS: keep the value given before COMMAND
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _attack_commands(sub, flags)
    _other_commands(sub, flags)
    return parser
