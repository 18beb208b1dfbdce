"""ECG beats for training and evaluation: UCR files (ECG5000) and raw PhysioNet records.

Every loader returns :class:`BeatSet` objects of ``float32 [n, 140]`` z-normalised beats with
0-based class indices; see :func:`load_ecg5000`, :func:`load_record` and :func:`load_source`.
"""

from pla_tvm.data.beats import (
                                BEAT_LENGTH,
                                ECG5000_CLASSES,
                                UNLABELLED,
                                BeatSet,
                                Dataset,
                                resample,
                                znormalize,
)
from pla_tvm.data.locate import DATA_ENV, locate_ucr
from pla_tvm.data.records import BeatWindow, load_record
from pla_tvm.data.sources import load_ecg5000, load_source, load_ucr, summarize

__all__ = [
    "BEAT_LENGTH", "DATA_ENV", "ECG5000_CLASSES", "UNLABELLED", "BeatSet", "BeatWindow",
    "Dataset", "load_ecg5000", "load_record", "load_source", "load_ucr", "locate_ucr",
    "resample", "summarize", "znormalize",
]
