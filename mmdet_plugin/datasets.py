"""mmdet's CocoDataset with an up-front check of the annotation file and image folder (``bnnas.data.coco_check``)."""

from __future__ import annotations

from mmengine.logging import MMLogger

from bnnas.data.coco_check import check_coco
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` that fails with one clear line (``BNNASError``) on an empty or broken annotation file.

    Checked when the dataset is built: the file lists images; every configured class is a category of the file;
    every box has positive width/height and lies in its image (1 px tolerance); every listed image exists under
    ``data_prefix['img']`` (``check_files=False`` skips that scan). Up to ``max_broken_boxes`` bad boxes are tolerated
    and dropped with a warning (COCO train2017 has 2 zero-height boxes; mmdet would drop them too).
    """

    def __init__(self, *args, max_broken_boxes: int = 0, check_files: bool = True, **kwargs):
        self.max_broken_boxes = max_broken_boxes
        self.check_files = check_files
        self._broken_ids: set = set()
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        img_dir = self.data_prefix.get("img") if self.check_files else None
        report = check_coco(self.ann_file, img_dir, classes=self.metainfo.get("classes"),
                            max_broken_boxes=self.max_broken_boxes)
        if report.broken:
            first = next(iter(report.broken.items()))
            MMLogger.get_current_instance().warning(
                f"{self.ann_file}: dropping {len(report.broken)} broken box(es), e.g. annotation {first[0]}: {first[1]}")
        self._broken_ids = set(report.broken)
        return super().load_data_list()

    def parse_data_info(self, raw_data_info: dict) -> dict:
        if self._broken_ids:
            raw_data_info = dict(raw_data_info)
            raw_data_info["raw_ann_info"] = [a for a in raw_data_info["raw_ann_info"]
                                             if a.get("id") not in self._broken_ids]
        return super().parse_data_info(raw_data_info)
