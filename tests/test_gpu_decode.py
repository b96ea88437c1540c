"""The optional decode-on-device data path (bnnas/data/gpu_decode.py), exercised on the CPU: crop boxes, agreement
with the PIL path, and the supernet trainer consuming raw-JPEG batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bnnas import get_space
from bnnas.data import build_classification_data
from bnnas.data.gpu_decode import IMAGENET_MEAN, IMAGENET_STD, GpuJpegAugment, JpegBytesDataset, collate_jpeg, rrc_box


def _jpeg_folder(root, n_per_class=4, classes=2, size=(64, 48)):
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / "train" / f"c{c}"
        d.mkdir(parents=True)
        for i in range(n_per_class):
            yy, xx = np.mgrid[: size[1], : size[0]]
            img = np.stack([xx * 3 + 40 * c, yy * 4, (xx + yy) * 2 + rng.integers(0, 20)], -1) % 256
            Image.fromarray(img.astype(np.uint8)).save(d / f"{i}.JPEG", quality=95)
    return root


def test_rrc_box_stays_inside_and_respects_scale():
    torch.manual_seed(0)
    for h, w in [(375, 500), (500, 375), (40, 1000), (224, 224)]:
        for _ in range(200):
            top, left, ch, cw = rrc_box(h, w)
            assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0


def test_device_augment_matches_pil_crop_resize(tmp_path):
    root = _jpeg_folder(tmp_path, 1, 1, size=(96, 80))
    path = next((root / "train" / "c0").iterdir())
    ds = JpegBytesDataset([(str(path), 0)])
    (data, _), _ = collate_jpeg([ds[0]])
    box = (8, 12, 56, 64)  # top, left, h, w
    for flip in (0, 1):
        params = torch.tensor([[*box, flip]])
        out = GpuJpegAugment(32, channels_last=False)((data, params), "cpu")[0]
        ref = Image.open(path).convert("RGB").crop((12, 8, 12 + 64, 8 + 56)).resize((32, 32), Image.BILINEAR)
        if flip:
            ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
        ref = (torch.from_numpy(np.asarray(ref, np.float32)).permute(2, 0, 1) / 255
               - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        assert out.shape == (3, 32, 32)
        assert (out - ref).abs().mean() < 0.05  # decoders and resamplers differ by a grey level or two


def test_supernet_trainer_consumes_raw_jpeg_batches(tmp_path):
    from bnnas.core.supernet import Supernet
    from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer

    root = _jpeg_folder(tmp_path / "imgs")
    data = build_classification_data(root, input_size=32, decode="gpu")
    assert data.device_transform is not None and data.collate_fn is not None
    cfg = SupernetTrainConfig(epochs=1, batch_size=4, workers=0)
    tr = SupernetTrainer(Supernet(get_space("spos-small", data.num_classes)), data, cfg, tmp_path / "run",
                         torch.device("cpu"), show_progress=False)
    res = tr.fit()
    assert len(res.history) == 1 and np.isfinite(res.history[0].train_loss)


def test_unknown_decode_refused(tmp_path):
    from bnnas.errors import BNNASError

    with pytest.raises(BNNASError, match="unknown decode"):
        build_classification_data(_jpeg_folder(tmp_path), decode="nvjpeg")
