"""Detection defaults, in one light module (the CLI imports it for its option defaults).

Chosen by measuring face recall and speed on face-mask-scenes-853 (docs/results/detection.md)."""

DEFAULT_DET_SIZE = 800  # long side (pixels) the image is scaled to for the face detector (at most, see SMALLEST_FACE)
# Photos, fast by default (docs/results/speed.md): the detector's input is sized from the photo and the smallest
# face wanted: a face of SMALLEST_FACE pixels in the photo is NET_FACE pixels at the detector's input, where
# CenterFace still finds it as often as at 800 px; the long side is at least MIN_INPUT (small photos are not
# shrunk further) and at most DEFAULT_DET_SIZE. A web photo of 800 px is thus seen at 544 px (under half the
# pixels of 800). Chosen on face-mask-scenes-ilc and the held-out scenes of face-mask-scenes-853 from NET_FACE
# 12/16/20 and MIN_INPUT 0/416/480/512 (tools/speed_ab.py). `--accurate` (ACCURATE below) turns the rule off:
# every photo at DEFAULT_DET_SIZE, small ones upscaled, which finds faces under SMALLEST_FACE pixels more often.
SMALLEST_FACE = 24
NET_FACE = 16
MIN_INPUT = 416
# The shipped models as int8 (onnxruntime static quantization, tools/quantize_models.py): about twice as fast on
# the CPU; `--accurate` runs the float32 files.
DEFAULT_INT8 = True
ACCURATE = {"smallest_face": 0.0, "int8": False}  # the preset `--accurate`: the defaults before issue 23
# Video, webcams and streams: time is short, so by default the detector sees the frame at half its size
# (long side at least VIDEO_DET_MIN, at most DEFAULT_DET_SIZE): 320 px for 640x480, 640 for 1280x720.
VIDEO_DET_SCALE = 0.5
VIDEO_DET_MIN = 320
DEFAULT_DET_THRESHOLD = 0.3  # face-centre score
DEFAULT_NMS_IOU = 0.3
# CenterFace's boxes run from the hairline to just under the mouth; face-mask annotations (and the crops the
# classifier trains on) run from the brows to the chin. The detector moves each box down by BOX_FIT[2] of its
# height and scales its width and height by BOX_FIT[0] and BOX_FIT[1] (about its centre), fitted on the
# training scenes of face-mask-scenes-853: `python tools/fit_face_boxes.py` (docs/results/detection.md).
BOX_FIT = (1.1, 1.05, 0.12)
DEFAULT_BOX_FIT = ",".join(f"{v:g}" for v in BOX_FIT)  # as the CLI's --box-fit takes it
# Margin around the face box for the classifier's crop: the training crops' margin, now that the boxes are
# framed as the training annotations are (validation scenes: 0.15 scored best of 0.15 / 0.2 / 0.25).
DEFAULT_MARGIN = 0.15
