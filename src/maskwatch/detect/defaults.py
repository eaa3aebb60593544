"""Detection defaults, in one light module (the CLI imports it for its option defaults).

Chosen by measuring face recall and speed on face-mask-scenes-853 (docs/results/detection.md)."""

DEFAULT_DET_SIZE = 800  # long side (pixels) the image is scaled to for the face detector
# Video, webcams and streams: time is short, so by default the detector sees the frame at half its size
# (long side at least VIDEO_DET_MIN, at most DEFAULT_DET_SIZE): 320 px for 640x480, 640 for 1280x720.
VIDEO_DET_SCALE = 0.5
VIDEO_DET_MIN = 320
DEFAULT_DET_THRESHOLD = 0.3  # face-centre score
DEFAULT_NMS_IOU = 0.3
# Margin around the detector's box for the classifier's crop. CenterFace boxes are tighter than the
# annotations the classifier was trained on, so it is larger than training's 0.15.
DEFAULT_MARGIN = 0.25
