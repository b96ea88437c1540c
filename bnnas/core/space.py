"""Search spaces as data.

A space is a stem, an optional fixed first block, a list of searchable layers and a head. Each layer lists its
candidate ops as short strings in the spirit of timm's architecture strings:

* ``k{3,5,7}e{3,6}`` -- MobileNetV2 inverted residual, depthwise kernel k, expansion e (ends in the BN the indicator
  reads);
* ``id`` -- identity (a skip; parameter-free);
* ``id1x1`` -- the identity of a layer that changes width or stride: 1x1 conv + BN, no activation (NAS-Bench-Macro);
  the indicator reads its BN like an MBConv's last BN, since it is the BN after the op's last conv;
* ``avg3`` / ``max3`` -- 3x3 average / max pooling (parameter-free, BNNAS++'s unbiased spaces only).

Spaces are declared from MobileNetV2-style stage tables ``(t, c, n, s)`` in :data:`SPACE_TABLES`; adding a space is
adding an entry, not a code branch.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from bnnas.errors import BNNASError

MBCONV_OPS: tuple[str, ...] = ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")
"""The paper's 6 candidates, in the paper's index order (0..5)."""
IDENTITY = "id"
CONV_IDENTITY = "id1x1"
POOL_OPS: tuple[str, ...] = ("avg3", "max3")

_MBCONV_RE = re.compile(r"^k([357])e([36])$")


def parse_op(op: str) -> tuple[str, int, int]:
    """Return ``(kind, kernel, expansion)``; kind is ``mbconv``, ``id``, ``idconv``, ``avg`` or ``max``."""
    m = _MBCONV_RE.match(op)
    if m:
        return "mbconv", int(m.group(1)), int(m.group(2))
    if op == IDENTITY:
        return "id", 0, 0
    if op == CONV_IDENTITY:
        return "idconv", 1, 0
    if op in POOL_OPS:
        return op[:3], 3, 0
    raise BNNASError(f"unknown op {op!r}: expected one of {MBCONV_OPS + (IDENTITY, CONV_IDENTITY) + POOL_OPS}")


def is_parameter_free(op: str) -> bool:
    return parse_op(op)[0] in ("id", "avg", "max")


def is_identity(op: str) -> bool:
    """Identity in function (a skip, or the 1x1 conv that stands in for one where the shape changes)."""
    return parse_op(op)[0] in ("id", "idconv")


ACTIVATIONS: tuple[str, ...] = ("relu6", "relu")
FC_CONVENTIONS: tuple[str, ...] = ("(2in-1)out", "in*out")


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: fixed in/out channels and stride, several candidate ops."""

    cin: int
    cout: int
    stride: int
    choices: tuple[str, ...]
    size_in: int  # spatial size of the layer input at the space's input resolution

    @property
    def size_out(self) -> int:
        return math.ceil(self.size_in / self.stride)

    @property
    def searchable(self) -> bool:
        return len(self.choices) > 1


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input_size: int
    stem_channels: int
    stem_stride: int
    first_channels: int | None  # output of the fixed depthwise-separable block after the stem (None: no such block)
    layers: tuple[LayerSpec, ...]
    head_channels: int
    num_classes: int
    feature_layers: tuple[int, ...] = ()  # last layer of each output stride, for detection backbones
    bn_after_every_op: bool = False  # BNNAS++ "unbiased" form: parameter-free ops also end in an affine BN
    description: str = ""
    default_budget: float = 0.0  # MFLOPs
    activation: str = "relu6"  # of the stem, the MBConv candidates and the head
    fc_flops: str = "(2in-1)out"  # how the FC enters the FLOPs count (the papers differ)
    benchmark: str = ""  # a published table of trained archs of this space (bnnas.benchmarks)
    key_ops: tuple[str, ...] = ()  # the benchmark's op encoding: an arch's key has digit key_ops.index(op) a layer
    file_sha256: str = ""  # a space read from a file (bnnas.core.space_file): the hash of its table, else ""

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def stem_out(self) -> int:
        return self.stem_channels if self.first_channels is None else self.first_channels

    @property
    def max_choices(self) -> int:
        return max(len(layer.choices) for layer in self.layers)

    def op_index(self, layer: int, op: str) -> int:
        try:
            return self.layers[layer].choices.index(op)
        except ValueError:
            raise BNNASError(
                f"layer {layer} of space {self.name!r} has no op {op!r} (choices: {', '.join(self.layers[layer].choices)})"
            ) from None


@dataclass(frozen=True)
class SpaceTable:
    """Compact declaration of a space; :func:`build_space` expands it into layers."""

    input_size: int
    stem: tuple[int, int]  # (channels, stride)
    first_channels: int | None  # None: the stem feeds the first layer directly
    stages: tuple[tuple[int, int, int, int], ...]  # (t, c, n, s) as in MobileNetV2; t is unused (e in {3, 6})
    head_channels: int
    num_classes: int
    # every layer's candidates in the space's own encoding order (empty: the paper's six MBConv ops, plus the
    # identity/extra rules below); an "id" at a layer that changes width or stride becomes ``transition_identity``
    choices: tuple[str, ...] = ()
    transition_identity: str | None = None
    fixed_identity: tuple[int, ...] = ()  # layers whose only choice is identity
    free_identity: bool = False  # identity is an extra choice on every non-strided, same-width layer
    extra_ops: tuple[str, ...] = ()  # e.g. pooling ops for the unbiased space (non-strided, same-width layers)
    # the one op of every layer that changes width or stride (None: searchable like the rest); such a layer has no
    # skip, so with frozen random weights each candidate there hands later layers a differently scrambled input
    transition_op: str | None = None
    bn_after_every_op: bool = False
    description: str = ""
    default_budget: float = 0.0  # MFLOPs used when --flops is not given
    activation: str = "relu6"
    fc_flops: str = "(2in-1)out"
    benchmark: str = ""  # the table's keys encode each layer's op as its index in ``choices``
    # (layer, ops) pairs: these layers offer exactly these ops, overriding every rule above (e.g. a fixed layer)
    layer_ops: tuple[tuple[int, tuple[str, ...]], ...] = ()


# NAS-Bench-Macro (Su et al., CVPR 2021) as published: 8 layers choosing identity / k3e3 / k5e6 (its encoding
# 0/1/2), 3^8 = 6561 archs trained on CIFAR-10; ReLU blocks, FLOPs with the FC counted as in*out
NAS_BENCH_MACRO = SpaceTable(
    input_size=32, stem=(32, 1), first_channels=None,
    stages=((0, 64, 2, 2), (0, 128, 3, 2), (0, 256, 3, 2)),
    head_channels=1280, num_classes=10, choices=(IDENTITY, "k3e3", "k5e6"), transition_identity=CONV_IDENTITY,
    activation="relu", fc_flops="in*out", benchmark="nas-bench-macro",
    description="NAS-Bench-Macro at 32px: 8 layers of identity / k3e3 / k5e6, a 1x1-conv identity at the "
                "3 width-doubling layers (published table of CIFAR-10 accuracies: bnnas.benchmarks)",
    default_budget=55.0,
)
# its 3 width-doubling layers fixed to k3e3 (every path shares its skip-less layers, as in spos-small-res):
# 3^5 = 243 of the table's keys remain, those with a 1 at layers 0, 2 and 5
NAS_BENCH_MACRO_RES = dataclasses.replace(
    NAS_BENCH_MACRO, transition_identity=None, transition_op="k3e3",
    description="nas-bench-macro with the 3 width-doubling layers fixed to k3e3: 5 residual layers search "
                "identity / k3e3 / k5e6 (243 keys of the published table)",
)


def _half_width(table: SpaceTable, description: str) -> SpaceTable:
    """``table`` with every width halved, at 28 px, keyed like it and ranked by our Fashion-MNIST table."""
    return dataclasses.replace(
        table, input_size=28, stem=(table.stem[0] // 2, table.stem[1]),
        stages=tuple((t, c // 2, n, s) for t, c, n, s in table.stages), head_channels=table.head_channels // 2,
        benchmark="nas-bench-macro-fmnist", description=description, default_budget=12.0,
    )


SPACE_TABLES: dict[str, SpaceTable] = {
    # The paper's main space (BN-NAS official code, SPOS/ABS depth): 21 layers, 4 of them fixed to identity.
    "spos-imagenet": SpaceTable(
        input_size=224, stem=(40, 2), first_channels=24,
        stages=((6, 32, 4, 2), (6, 56, 4, 2), (6, 112, 4, 2), (6, 128, 4, 1), (6, 256, 4, 2), (6, 432, 1, 1)),
        head_channels=1728, num_classes=1000, fixed_identity=(1, 5, 6, 9),
        description="BN-NAS/SPOS MobileNet space at 224px, 21 layers (4 fixed to identity)", default_budget=475.0,
    ),
    # FairNAS space (ABS FairNAS / FairNAS-A): 19 layers, 6 ops each, no identity.
    "fairnas-imagenet": SpaceTable(
        input_size=224, stem=(32, 2), first_channels=16,
        stages=((6, 32, 2, 2), (6, 40, 4, 2), (6, 80, 4, 2), (6, 96, 4, 1), (6, 192, 4, 2), (6, 320, 1, 1)),
        head_channels=1280, num_classes=1000,
        description="FairNAS-A MobileNet space at 224px, 19 layers of 6 MBConv ops", default_budget=330.0,
    ),
    # Small-input space for 32x32 images (CIFAR-sized, and the built-in digits set): 12 layers, CPU-friendly.
    "spos-small": SpaceTable(
        input_size=32, stem=(16, 2), first_channels=16,
        stages=((6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1), (6, 160, 2, 2)),
        head_channels=320, num_classes=10, free_identity=True,
        description="MobileNet space for 32px inputs, identity allowed on non-strided same-width layers",
        default_budget=10.0,
    ),
    # spos-small with the width/stride-changing layers fixed to k3e6, so every path shares its skip-less layers and
    # only the residual layers are searched: what lets a BN-only supernet learn on small data (docs/bn_only_recipe.md)
    "spos-small-res": SpaceTable(
        input_size=32, stem=(16, 2), first_channels=16,
        stages=((6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1), (6, 160, 2, 2)),
        head_channels=320, num_classes=10, free_identity=True, transition_op="k3e6",
        description="spos-small with fixed k3e6 transition layers: 7 residual layers search 6 MBConv ops + identity",
        default_budget=10.0,
    ),
    # BNNAS++ unbiased space: parameter-free candidates next to MBConv ops, and a BN after *every* candidate.
    "unbiased-small": SpaceTable(
        input_size=32, stem=(16, 2), first_channels=16,
        stages=((6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1), (6, 160, 2, 2)),
        head_channels=320, num_classes=10, free_identity=True, extra_ops=POOL_OPS, bn_after_every_op=True,
        description="32px space with identity/avg/max candidates, every candidate ending in an affine BN (BNNAS++)",
        default_budget=10.0,
    ),
    # The same candidates without the extra BNs: reproduces BN-NAS's bias toward convolutions.
    "biased-small": SpaceTable(
        input_size=32, stem=(16, 2), first_channels=16,
        stages=((6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1), (6, 160, 2, 2)),
        head_channels=320, num_classes=10, free_identity=True, extra_ops=POOL_OPS, bn_after_every_op=False,
        description="as unbiased-small but parameter-free candidates have no BN (BN-NAS's biased form)",
        default_budget=10.0,
    ),
    "nas-bench-macro": NAS_BENCH_MACRO,
    "nas-bench-macro-res": NAS_BENCH_MACRO_RES,
    # Both at half width and 28 px (Fashion-MNIST's own size), about 4x cheaper to train: the space of our
    # in-domain ground truth (bnnas.benchmarks "nas-bench-macro-fmnist"); keys as in the published table
    "nas-bench-macro-half": _half_width(
        NAS_BENCH_MACRO, "nas-bench-macro at half width and 28px (the space of the Fashion-MNIST ground truth)"),
    "nas-bench-macro-res-half": _half_width(
        NAS_BENCH_MACRO_RES,
        "nas-bench-macro-res at half width and 28px: 5 residual layers search identity / k3e3 / k5e6"),
}


def _layer_choices(name: str, table: SpaceTable, idx: int, cin: int, c: int, stride: int) -> tuple[str, ...]:
    changes_shape = stride != 1 or cin != c
    explicit = dict(table.layer_ops).get(idx)
    if explicit is not None:
        if changes_shape and IDENTITY in explicit:
            raise ValueError(f"{name}: field 'layer_ops': layer {idx} cannot offer identity (stride {stride}, "
                             f"{cin}->{c}); use id1x1")
        return tuple(explicit)
    if idx in table.fixed_identity:
        if changes_shape:
            raise ValueError(f"{name}: field 'fixed_identity': layer {idx} cannot be identity (stride {stride}, "
                             f"{cin}->{c})")
        return (IDENTITY,)
    if table.transition_op is not None and changes_shape:
        return (table.transition_op,)
    if table.choices:
        if changes_shape and IDENTITY in table.choices and table.transition_identity is None:
            raise ValueError(f"{name}: field 'choices': layer {idx} changes shape, so its identity needs a "
                             "transition_identity")
        return tuple(table.transition_identity if op == IDENTITY and changes_shape else op for op in table.choices)
    choices = MBCONV_OPS
    if not changes_shape:
        if table.free_identity:
            choices = choices + (IDENTITY,)
        choices = choices + table.extra_ops
    return choices


def build_space(name: str, table: SpaceTable, num_classes: int | None = None, file_sha256: str = "") -> SearchSpace:
    if table.activation not in ACTIVATIONS or table.fc_flops not in FC_CONVENTIONS:
        raise ValueError(f"{name}: activation must be one of {ACTIVATIONS}, fc_flops one of {FC_CONVENTIONS}")
    size = math.ceil(table.input_size / table.stem[1])
    cin = table.first_channels if table.first_channels is not None else table.stem[0]
    layers: list[LayerSpec] = []
    feature_layers: list[int] = []
    for _t, c, n, s in table.stages:
        if s > 1 and layers:
            feature_layers.append(len(layers) - 1)
        for i in range(n):
            stride = s if i == 0 else 1
            choices = _layer_choices(name, table, len(layers), cin, c, stride)
            layers.append(LayerSpec(cin, c, stride, choices, size))
            size = math.ceil(size / stride)
            cin = c
    feature_layers.append(len(layers) - 1)
    return SearchSpace(
        name=name, input_size=table.input_size, stem_channels=table.stem[0], stem_stride=table.stem[1],
        first_channels=table.first_channels, layers=tuple(layers), head_channels=table.head_channels,
        num_classes=num_classes if num_classes is not None else table.num_classes,
        feature_layers=tuple(feature_layers), bn_after_every_op=table.bn_after_every_op,
        description=table.description, default_budget=table.default_budget, activation=table.activation,
        fc_flops=table.fc_flops, benchmark=table.benchmark, key_ops=table.choices if table.benchmark else (),
        file_sha256=file_sha256,
    )


def space_at_resolution(space: SearchSpace, input_size: int) -> SearchSpace:
    """The same space (widths, strides, classes) with spatial sizes for ``input_size`` -- for FLOPs at that size."""
    if input_size == space.input_size:
        return space
    table = dataclasses.replace(space_table(space.name), input_size=input_size)
    return build_space(space.name, table, space.num_classes, space.file_sha256)


# spaces read from files in this process: name -> (table, sha256 of the table); see bnnas.core.space_file
_FILE_TABLES: dict[str, tuple[SpaceTable, str]] = {}
SPACE_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def space_table(name: str) -> SpaceTable:
    """The table of a built-in space or of a file space loaded in this process."""
    if name in SPACE_TABLES:
        return SPACE_TABLES[name]
    if name in _FILE_TABLES:
        return _FILE_TABLES[name][0]
    raise BNNASError(f"unknown search space {name!r}; known spaces: {', '.join(sorted(SPACE_TABLES))} "
                     "(or a space file: .yaml/.json, see docs/spaces.md)")


def register_space(name: str, table: SpaceTable, sha256: str) -> SearchSpace:
    """Make a file space known by ``name`` in this process; the same name with other contents is an error
    (a run's records name spaces, so one name must mean one space)."""
    built = build_space(name, table, file_sha256=sha256)
    if name in SPACE_TABLES:
        if dataclasses.replace(built, file_sha256="", description="") != dataclasses.replace(
                get_space(name), description=""):
            raise BNNASError(f"field 'name': {name!r} is a built-in space with other contents; give the file space "
                             "another name")
        return get_space(name)  # a dumped built-in space is that space
    known = _FILE_TABLES.get(name)
    if known is not None and known[1] != sha256:
        raise BNNASError(f"field 'name': a different space named {name!r} is already loaded; give this one another "
                         "name")
    _FILE_TABLES[name] = (table, sha256)
    return built


def get_space(name: str, num_classes: int | None = None) -> SearchSpace:
    """Look a space up by name or read it from a ``.yaml``/``.json`` file (:mod:`bnnas.core.space_file`);
    ``num_classes`` overrides the classifier width (e.g. 10 for digits)."""
    if str(name).lower().endswith(SPACE_FILE_SUFFIXES):
        from bnnas.core.space_file import load_space_file  # the file format sits on top of this module

        name = load_space_file(name).name
    table = space_table(name)
    return build_space(name, table, num_classes, _FILE_TABLES[name][1] if name in _FILE_TABLES else "")


def list_spaces() -> list[str]:
    return sorted(SPACE_TABLES)


# Published architectures as paper op indices (0..5 = MBCONV_OPS order, -1 = identity).
PRESETS: dict[str, tuple[str, list[int]]] = {
    "bnnas-spos": ("spos-imagenet", [3, -1, 0, 4, 0, -1, -1, 0, 4, -1, 4, 4, 1, 4, 2, 0, 0, 4, 0, 2, 2]),
    "spos": ("spos-imagenet", [0, -1, 0, 0, 4, -1, -1, 2, 0, -1, 4, 4, 3, 0, 2, 1, 0, 4, 2, 5, 2]),
    "abs-fairnas": ("fairnas-imagenet", [4, 2, 4, 2, 2, 2, 5, 2, 4, 4, 2, 2, 2, 4, 5, 4, 2, 2, 5]),
}


def ops_from_paper_indices(indices: list[int]) -> list[str]:
    out = []
    for i in indices:
        if i == -1:
            out.append(IDENTITY)
        elif 0 <= i < len(MBCONV_OPS):
            out.append(MBCONV_OPS[i])
        else:
            raise BNNASError(f"paper op index {i} out of range (-1 for identity, 0..5 for {', '.join(MBCONV_OPS)})")
    return out


def paper_indices_from_ops(ops: list[str]) -> list[int | None]:
    """Inverse of :func:`ops_from_paper_indices`; ``None`` for ops the paper's encoding has no index for."""
    return [-1 if op == IDENTITY else (MBCONV_OPS.index(op) if op in MBCONV_OPS else None) for op in ops]
