"""Detection defaults, in one light module (the CLI imports it for its option defaults).

Chosen by measuring face recall and speed on face-mask-scenes-853 (docs/results/detection.md)."""

DEFAULT_DET_SIZE = 800  # long side (pixels) the image is scaled to for the face detector
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
